// nestbox UI: small progressive enhancements. Every page works without this file.
// Sample data is only ever put into the page with textContent / attributes, never as HTML.
"use strict";
document.documentElement.classList.add("js");

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!r.ok) throw new Error(r.status + " " + r.statusText);
  return r.json();
}

// Tabs (WAI-ARIA tabs pattern: arrows move, Home/End jump; the URL hash keeps the tab).
function initTabs() {
  const list = document.getElementById("tabs");
  if (!list) return;
  const tabs = Array.from(list.querySelectorAll("[role=tab]"));
  function select(tab, focus) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      const panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    }
    if (focus) tab.focus();
    history.replaceState(null, "", "#" + tab.getAttribute("aria-controls"));
  }
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => select(t, false));
    t.addEventListener("keydown", (ev) => {
      let j = null;
      if (ev.key === "ArrowRight") j = (i + 1) % tabs.length;
      else if (ev.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
      else if (ev.key === "Home") j = 0;
      else if (ev.key === "End") j = tabs.length - 1;
      if (j !== null) { ev.preventDefault(); select(tabs[j], true); }
    });
  });
  const wanted = tabs.find((t) => "#" + t.getAttribute("aria-controls") === location.hash);
  select(wanted || tabs[0], false);
  window.nestboxSelectTab = (id) => { const t = tabs.find((x) => x.getAttribute("aria-controls") === id); if (t) select(t, false); };
}

function initCopy() {
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-copy]");
    if (!b) return;
    const text = b.getAttribute("data-copy");
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => { b.textContent = "copied"; setTimeout(() => { b.textContent = "copy"; }, 1500); }, () => {});
  });
}

function initTree() {
  const tree = document.getElementById("tree");
  if (!tree) return;
  const all = (open) => tree.querySelectorAll("details").forEach((d) => { d.open = open; });
  const ex = document.getElementById("tree-expand"), co = document.getElementById("tree-collapse");
  if (ex) ex.addEventListener("click", () => all(true));
  if (co) co.addEventListener("click", () => all(false));
}

// The call log: pages come from the server (a process may have 100 000 calls).
function initCalls() {
  const form = document.getElementById("calls-form");
  if (!form) return;
  const task = form.dataset.task;
  const body = document.querySelector("#calls tbody");
  const status = document.getElementById("calls-status");
  const prev = document.getElementById("calls-prev"), next = document.getElementById("calls-next");
  let page = 0;
  async function load() {
    const p = new URLSearchParams(new FormData(form));
    p.set("page", String(page));
    status.textContent = "Loading…";
    try {
      const d = await getJSON("/analysis/" + encodeURIComponent(task) + "/calls.json?" + p.toString());
      body.replaceChildren();
      for (const c of d.calls) {
        const tr = el("tr");
        tr.append(el("td", c.timestamp), el("td", c.api, "mono"), el("td", c.category), el("td", c.arguments, "mono"), el("td", c["return"], "mono"), el("td", c.status ? "yes" : "no"));
        body.append(tr);
      }
      status.textContent = d.matched + " of " + d.total + " calls match · page " + (d.page + 1) + " of " + Math.max(d.pages, 1);
      prev.disabled = d.page <= 0;
      next.disabled = d.page + 1 >= d.pages;
    } catch (e) {
      status.textContent = "Could not load calls: " + e.message;
    }
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); page = 0; load(); });
  prev.addEventListener("click", () => { if (page > 0) { page--; load(); } });
  next.addEventListener("click", () => { page++; load(); });
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-calls]");
    if (!b) return;
    document.getElementById("calls-pid").value = b.getAttribute("data-calls");
    page = 0;
    load();
    document.getElementById("calls-title").scrollIntoView();
  });
}

function initLightbox() {
  const dlg = document.getElementById("lightbox");
  if (!dlg || !dlg.showModal) return;
  const img = document.getElementById("lightbox-img");
  document.querySelectorAll("a.shot").forEach((a) => a.addEventListener("click", (ev) => {
    ev.preventDefault();
    img.src = a.getAttribute("href");
    img.alt = a.querySelector("img").alt;
    dlg.showModal();
  }));
  document.getElementById("lightbox-close").addEventListener("click", () => dlg.close());
  dlg.addEventListener("click", (ev) => { if (ev.target === dlg) dlg.close(); });
}

// The queue follows running tasks without reloading (first page only).
function initQueue() {
  const table = document.getElementById("tasks");
  if (!table || !table.dataset.poll) return;
  const body = table.querySelector("tbody");
  const live = document.getElementById("live");
  function cellVerdict(td, t) {
    td.replaceChildren(t.verdict ? el("span", t.verdict + " " + t.score, "verdict v-" + t.verdict) : el("span", "—", "muted"));
  }
  function row(t) {
    const tr = el("tr");
    tr.dataset.id = t.id;
    const a = el("a", t.id); a.href = "/analysis/" + t.id + "/";
    const idTd = el("td"); idTd.append(a);
    const st = el("td"); const sp = el("span", t.status, "status s-" + t.status); sp.dataset.field = "status"; st.append(sp);
    const target = el("td", null, "mono");
    if (t.sha256) { const l = el("a", t.target); l.href = "/file/" + t.sha256 + "/"; l.title = t.sha256; target.append(l); } else target.textContent = t.target;
    const verdict = el("td"); verdict.dataset.field = "verdict"; cellVerdict(verdict, t);
    const sigs = el("td", t.signatures === null ? "—" : t.signatures); sigs.dataset.field = "signatures";
    const dur = el("td", t.duration, "hide-sm"); dur.dataset.field = "duration";
    tr.append(idTd, st, target, el("td", t.category, "hide-sm"), verdict, sigs, el("td", t.added, "hide-sm"), dur, el("td", t.owner || "—", "hide-sm"));
    return tr;
  }
  async function poll() {
    try {
      const d = await getJSON(table.dataset.poll);
      const have = new Map(Array.from(body.querySelectorAll("tr[data-id]")).map((r) => [r.dataset.id, r]));
      if (have.size === 0 && d.rows.length) body.replaceChildren();
      let added = 0;
      for (const t of d.rows.slice().reverse()) {
        const r = have.get(String(t.id));
        if (!r) { body.prepend(row(t)); added++; continue; }
        const s = r.querySelector("[data-field=status]");
        if (s.textContent !== t.status) { s.textContent = t.status; s.className = "status s-" + t.status; }
        cellVerdict(r.querySelector("[data-field=verdict]"), t);
        r.querySelector("[data-field=signatures]").textContent = t.signatures === null ? "—" : t.signatures;
        r.querySelector("[data-field=duration]").textContent = t.duration;
      }
      live.textContent = added ? added + " new task(s)" : "";
    } catch (e) { live.textContent = "Live updates paused: " + e.message; }
  }
  setInterval(poll, 2000);
}

// A task without a report yet: follow its status in place.
function initPending() {
  const box = document.getElementById("pending");
  if (!box) return;
  const id = box.dataset.task;
  const status = document.getElementById("task-status");
  const final = ["reported", "failed_analysis", "failed_processing", "failed_reporting", "recovered", "banned"];
  const timer = setInterval(async () => {
    try {
      const d = await getJSON("/analysis/" + encodeURIComponent(id) + "/status.json");
      status.textContent = d.status;
      status.className = "status s-" + d.status;
      if (final.includes(d.status)) {
        clearInterval(timer);
        if (d.status === "reported") {
          document.getElementById("report-link").hidden = false;
          document.getElementById("pending-note").textContent = "The analysis is done.";
        } else {
          document.getElementById("pending-note").textContent = "The analysis ended without a report.";
        }
      }
    } catch (e) { /* keep polling */ }
  }, 1000);
}

function initSubmit() {
  const drop = document.getElementById("drop");
  if (!drop) return;
  const input = document.getElementById("files");
  const chosen = document.getElementById("chosen");
  const show = () => { chosen.textContent = Array.from(input.files).map((f) => f.name + " (" + f.size + " bytes)").join(", "); };
  input.addEventListener("change", show);
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    if (ev.dataTransfer && ev.dataTransfer.files.length) { input.files = ev.dataTransfer.files; show(); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  initTabs(); initCopy(); initTree(); initCalls(); initLightbox(); initQueue(); initPending(); initSubmit();
});

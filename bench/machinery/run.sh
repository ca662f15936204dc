#!/usr/bin/env bash
# Per-analysis overhead of the `emulator` machinery (see BENCHMARKS.md):
#   1. `import speakeasy` alone (the interpreter + emulator start-up every run pays);
#   2. the runner on a small PE, directly (venv python, no sandbox);
#   3. the same PE through the real server: the sandboxed runner (bwrap + seccomp + rlimits
#      + uid drop) as the machinery logs it, the whole detonation stage, and submit → reported.
# Prints a Markdown table of median / min / max over BENCH_RUNS runs (default 5).
# Needs what `make test` installs (mingw-w64, the speakeasy venv: `make emulator-venv`).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUNS="${BENCH_RUNS:-5}"
VENV="$ROOT/.cache/speakeasy-venv"
"$ROOT/scripts/emulator-venv.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${BENCH_BIN:-$TARGET_DIR/debug/nestbox}"
[ -x "$BIN" ] || (cd "$ROOT" && cargo build -p nestbox-server)
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/small.c" <<'C'
#include <windows.h>
int main(void) {
    CreateMutexA(NULL, FALSE, "bench_mutex");
    HANDLE f = CreateFileA("C:\\Users\\Public\\b.txt", GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    DWORD w; WriteFile(f, "bench", 5, &w, NULL); CloseHandle(f);
    WinExec("cmd.exe /c echo bench", SW_HIDE);
    return 0;
}
C
x86_64-w64-mingw32-gcc -O1 -s -o "$WORK/small.exe" "$WORK/small.c"
mkdir -p "$WORK/out"
cat > "$WORK/settings.json" <<JSON
{"sample": "$WORK/small.exe", "out": "$WORK/out", "kind": "exe", "arch": "x64", "timeout": 30,
 "max_api_count": 10000, "max_dropped": 10, "max_file_size": 1048576, "argv": [], "name": "small.exe"}
JSON

now() { date +%s.%N; }
import_t=(); direct_t=()
for _ in $(seq "$RUNS"); do
  t0=$(now); "$VENV/bin/python3" -I -c "import speakeasy" ; t1=$(now)
  import_t+=("$(awk "BEGIN{print $t1 - $t0}")")
  t0=$(now); "$VENV/bin/python3" -I "$ROOT/crates/nestbox-emulator/src/runner.py" "$WORK/settings.json"; t1=$(now)
  direct_t+=("$(awk "BEGIN{print $t1 - $t0}")")
done

cat > "$WORK/nestbox.toml" <<TOML
data_dir = "$WORK/data"
[analysis]
workers = 1
poll_interval_ms = 50
[sandbox]
machinery = "none"
[emulator]
venv = "$VENV"
TOML
NESTBOX_SERVER__PORT=0 NESTBOX_LOG=info "$BIN" serve --config "$WORK/nestbox.toml" 2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "addr=" "$WORK/server.log" && break; sleep 0.1; done
ADDR=$(grep -o 'addr=[0-9.:]*' "$WORK/server.log" | head -1 | cut -d= -f2)

python3 - "$ADDR" "$WORK/small.exe" "$RUNS" "${import_t[*]}" "${direct_t[*]}" <<'PY'
import json, re, statistics, sys, time, urllib.request, uuid
addr, sample, runs = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
imp = [float(x) for x in sys.argv[4].split()]
direct = [float(x) for x in sys.argv[5].split()]
def post(path, fields, files):
    b = uuid.uuid4().hex
    body = b""
    for k, v in fields.items():
        body += f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
    for k, (name, data) in files.items():
        body += f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{name}\"\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{b}--\r\n".encode()
    req = urllib.request.Request(f"http://{addr}{path}", body, {"Content-Type": f"multipart/form-data; boundary={b}"})
    return json.load(urllib.request.urlopen(req))
def get(path):
    return json.load(urllib.request.urlopen(f"http://{addr}{path}"))
sandboxed, stage, e2e = [], [], []
for i in range(runs):
    t0 = time.time()
    tid = post("/tasks/create/file", {"timeout": "30"}, {"file": (f"small{i}.exe", sample + bytes([i]))})["task_id"]
    while get(f"/tasks/view/{tid}")["task"]["status"] != "reported":
        time.sleep(0.02)
    e2e.append(time.time() - t0)
    log = "\n".join(get(f"/tasks/report/{tid}")["debug"]["log"])
    sandboxed.append(float(re.search(r"emulator: speakeasy \S+ ran .* in ([0-9.]+) s", log).group(1)))
    stage.append(float(re.search(r"emulator: detonation total ([0-9.]+) s", log).group(1)))
def row(name, xs):
    return f"| {name} | {statistics.median(xs):.3f} | {min(xs):.3f} | {max(xs):.3f} |"
print(f"Emulator per-analysis overhead, small PE (mingw, 4 API calls of interest), {runs} runs, seconds:\n")
print("| step | median | min | max |\n|---|---|---|---|")
print(row("`import speakeasy` (venv python)", imp))
print(row("runner directly (import + load + emulate + report)", direct))
print(row("runner in the sandbox (bwrap + seccomp + rlimits + uid drop)", sandboxed))
print(row("detonation stage (scratch tree, sandboxed run, mapping, signatures)", stage))
print(row("submit → reported (static triage + detonation + report)", e2e))
PY

# The qemu machinery: the project's Linux guest under TCG (scripts/guest-image.sh), each
# round one cold-boot analysis and one resumed from a saved state, through the machinery
# (overlay, QEMU, agent sequence, the sample under strace in the guest, result server,
# teardown). "agent ready" is from the start of the agent session, just after QEMU launch.
echo
(cd "$ROOT" && NESTBOX_BENCH_QEMU_RUNS="$RUNS" cargo test -q -p nestbox-qemu --test real_guest -- --nocapture 2>/dev/null) |
  grep '^BENCH ' | python3 -c '
import re, statistics, sys
rows = {}
for l in sys.stdin:
    kind, ready, total = re.match(r"BENCH (\w+) ready=([0-9.na]+) total=([0-9.]+)", l).groups()
    rows.setdefault(kind, []).append((float(ready), float(total)))
def row(name, xs):
    return f"| {name} | {statistics.median(xs):.3f} | {min(xs):.3f} | {max(xs):.3f} |"
n = len(rows.get("cold", []))
print(f"QEMU per-analysis overhead (TCG, 256 MiB, 1 vCPU, shell-script sample), {n} runs each, seconds:\n")
print("| step | median | min | max |\n|---|---|---|---|")
for kind in ("cold", "warm"):
    xs = rows.get(kind, [])
    if xs:
        print(row(f"{kind}: launch → agent ready", [r for r, _ in xs]))
        print(row(f"{kind}: whole analysis (overlay → results → teardown)", [t for _, t in xs]))
'

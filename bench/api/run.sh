#!/usr/bin/env bash
# HTTP API benchmark of nestbox (see bench/api/README.md and BENCHMARKS.md).
#
# Builds the release server and the hello-JSON ceiling, starts each on one pinned core,
# fills nestbox with tasks, drives every cell with wrk from another pinned core and prints
# a Markdown table: endpoint | c | req/s | p99 | ratio to the ceiling at the same c | p90 |
# server CPU per request | server core busy.
#
# Environment (all optional):
#   BENCH_DURATION     seconds per wrk cell (default 20)
#   BENCH_TASKS        tasks created before measuring (default 10000)
#   BENCH_CONNECTIONS  space-separated wrk connection counts (default "1 16")
#   BENCH_SERVER_CPU   core the servers are pinned to (default 0)
#   BENCH_CLIENT_CPU   core wrk is pinned to (default 1)
#   BENCH_NESTBOX_LOG  NESTBOX_LOG for the server (default unset: the server's default
#                      filter, `info,sqlx=warn`, i.e. one "task added" line per create)
#   BENCH_FILE_KIND    content of the 10 KB upload: binary (default) or text
#   BENCH_KEEP         directory to copy the raw wrk outputs and server logs into
#   BENCH_SCHED        scheduling of the servers and wrk: fifo (default: SCHED_FIFO when
#                      allowed, see below), nice (nice -10) or none
#   BENCH_SKIP_BUILD   1 = use the binaries already in target/release
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${BENCH_DURATION:-20}"
TASKS="${BENCH_TASKS:-10000}"
CONNECTIONS="${BENCH_CONNECTIONS:-1 16}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
NESTBOX="$TARGET_DIR/release/nestbox"
HELLO="$TARGET_DIR/release/nestbox-bench-hello"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- processes and temporary files, all removed on exit -----------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/nestbox-bench.XXXXXX")"
PIDS=()
WRK_PID=""
cleanup() {
    local rc=$?
    local pid
    if [[ -n "$WRK_PID" ]]; then kill -TERM "$WRK_PID" 2>/dev/null || true; fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "${BENCH_KEEP:-}" && -d "$TMP" ]]; then
        mkdir -p "$BENCH_KEEP"
        cp "$TMP"/*.txt "$TMP"/*.log "$BENCH_KEEP"/ 2>/dev/null || true
        log "raw outputs kept in $BENCH_KEEP"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites ------------------------------------------------------------------------
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk (Debian package wrk)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q wrk >/dev/null 2>&1 ||
        { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q wrk >/dev/null; } ||
        die "could not install wrk"
fi
for tool in taskset python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
NCPU="$(nproc --all)"
((NCPU >= 2)) || log "warning: only $NCPU CPU; server and wrk share it, numbers are not comparable"
((SERVER_CPU < NCPU)) || SERVER_CPU=0
((CLIENT_CPU < NCPU)) || CLIENT_CPU=0

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    log "building (release)"
    (cd "$ROOT" && cargo build --release -q -p nestbox-server -p nestbox-bench-hello)
fi
[[ -x "$NESTBOX" && -x "$HELLO" ]] || die "missing $NESTBOX or $HELLO"
# Run copies, so that a build started meanwhile (shared target dir) cannot swap them.
cp "$NESTBOX" "$HELLO" "$TMP/"
NESTBOX="$TMP/$(basename "$NESTBOX")"
HELLO="$TMP/$(basename "$HELLO")"

# Scheduling of the servers and wrk. On a shared machine other work (builds, other
# sessions, usually in other cgroups, where nice does not reach) takes the two cores away
# at random and makes req/s meaningless: the hello ceiling moved between 18k and 49k req/s
# under nice -10, and 120k-155k under SCHED_FIFO. So by default both run SCHED_FIFO
# (priority 10), when allowed. The kernel still leaves 5 % of each second to other tasks:
# when a server saturates its core (the c 16 cells), that shows as pauses of up to ~50 ms
# once a second, i.e. in p99. BENCH_SCHED=nice uses nice -10 instead, BENCH_SCHED=none
# leaves the scheduling alone.
SCHED="${BENCH_SCHED:-fifo}"
PRIO=()
case "$SCHED" in
fifo)
    if chrt -f 10 true 2>/dev/null; then
        PRIO=(chrt -f 10)
    else
        log "warning: SCHED_FIFO not allowed, running with nice -10 (if allowed)"
        SCHED="nice"
    fi
    ;;
nice | none) ;;
*) die "BENCH_SCHED must be fifo, nice or none" ;;
esac
if [[ "$SCHED" == nice ]]; then
    if [[ "$(nice -n -10 nice 2>/dev/null)" == "-10" ]]; then PRIO=(nice -n -10); else SCHED="none"; fi
fi

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME LOGFILE CMD...: start CMD pinned to SERVER_CPU, wait for its
# "listening addr=..." line, then set PORT to the port it logged.
start_server() {
    local name="$1" logfile="$2"
    shift 2
    "${PRIO[@]}" taskset -c "$SERVER_CPU" "$@" >"$logfile" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    local i addr
    for ((i = 0; i < 300; i++)); do
        addr="$(grep -o 'listening addr=[0-9.:]*' "$logfile" 2>/dev/null | head -n1 | cut -d= -f2 || true)"
        [[ -n "$addr" ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$logfile" >&2; die "$name exited at start-up"; }
        sleep 0.1
    done
    [[ -n "$addr" ]] || { cat "$logfile" >&2; die "$name did not log its address in 30 s"; }
    PORT="${addr##*:}"
    SERVER_PID="$pid"
    log "$name pid $pid listening on $addr (cpu $SERVER_CPU)"
}

stop_server() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# --- measuring ----------------------------------------------------------------------------
ROWS=()       # "endpoint|c|rps|p99_ms"
WARNINGS=()

# p99 from wrk's latency distribution, in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n
    }'
}

# CPU time (user + system, all threads) a process has used, in clock ticks.
cpu_ticks() {
    sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
CLK_TCK="$(getconf CLK_TCK)"

# cell LABEL C PID URL [LUA]: one wrk run against the server PID, parsed into ROWS. Also
# records the server's CPU time per request (all its threads): unlike req/s, it hardly
# moves when other work on the machine takes the core away, and 1e6 / it is what one
# fully available core would serve.
cell() {
    local label="$1" c="$2" pid="$3" url="$4" script="${5:-}"
    local out="$TMP/wrk-${label//[^a-zA-Z0-9]/_}-c$c.txt"
    local args=(-t1 "-c$c" "-d${DURATION}s" --latency --timeout 10s)
    [[ -n "$script" ]] && args+=(-s "$script")
    log "wrk $label c=$c for ${DURATION}s"
    local t0 t1
    t0="$(cpu_ticks "$pid")"
    # In the background and waited for, so that a signal stops the run at once.
    "${PRIO[@]}" taskset -c "$CLIENT_CPU" wrk "${args[@]}" "$url" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID" || { cat "$out" >&2; die "wrk failed"; }
    WRK_PID=""
    t1="$(cpu_ticks "$pid")"
    local rps p90 p99 total non2xx sockerr cpu_us busy
    rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
    p90="$(awk '$1 == "90%" { print $2 }' "$out")"
    p99="$(awk '$1 == "99%" { print $2 }' "$out")"
    total="$(awk '/ requests in / { print $1 }' "$out")"
    [[ -n "$rps" && -n "$p90" && -n "$p99" && -n "$total" ]] || { cat "$out" >&2; die "could not parse wrk output"; }
    cpu_us="$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$total" 'BEGIN { printf "%.0f", t / hz * 1e6 / n }')"
    busy="$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f", 100 * t / hz / d }')"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")"
    sockerr="$(grep -o 'Socket errors:.*' "$out" || true)"
    if [[ -n "$non2xx" ]]; then WARNINGS+=("$label c=$c: $non2xx non-2xx responses"); fi
    if [[ -n "$sockerr" ]]; then WARNINGS+=("$label c=$c: $sockerr"); fi
    ROWS+=("$label|$c|$rps|$(to_ms "$p99")|$cpu_us|$busy|$(to_ms "$p90")")
}

# --- the servers: the hello ceiling and nestbox, API node only ---------------------------
# Both stay up for the whole run, pinned to the same core; the idle one costs nothing.
start_server hello "$TMP/hello.log" "$HELLO" "$(free_port)"
HELLO_PID="$SERVER_PID"
HELLO_URL="http://127.0.0.1:$PORT/"
curl -fsS "$HELLO_URL" | grep -q '"message":"hello"' || die "hello answered wrongly"

mkdir -p "$TMP/data"
cat >"$TMP/nestbox.toml" <<EOF
data_dir = "$TMP/data"

[server]
host = "127.0.0.1"
port = $(free_port)

[analysis]
workers = 0

# The /apiv2/ cells run with CAPE's token auth on and throttling off.
[cape]
token_auth_enabled = true
ratelimit = false
admin_password = "bench-admin"

# The /api/v4/ cells run with Assemblyline's quotas enforced (the concurrent-call counter
# is taken and given back in the store on every request) but high enough never to refuse;
# the concurrent submission quota is off (no worker: every submission stays pending).
[assemblyline.quotas]
concurrent_api_calls = 1000
concurrent_submissions = 0
EOF
if [[ -n "${BENCH_NESTBOX_LOG:-}" ]]; then
    export NESTBOX_LOG="$BENCH_NESTBOX_LOG"
else
    unset NESTBOX_LOG
fi
start_server nestbox "$TMP/nestbox.log" "$NESTBOX" serve --config "$TMP/nestbox.toml"
NESTBOX_PID="$SERVER_PID"
BASE="http://127.0.0.1:$PORT"

log "creating $TASKS tasks"
taskset -c "$CLIENT_CPU" python3 "$HERE/populate.py" 127.0.0.1 "$PORT" "$TASKS" >"$TMP/populate.txt" ||
    die "populating failed"
log "$(cat "$TMP/populate.txt")"

VIEW_ID=$(((TASKS + 1) / 2))
if ((TASKS < 1100)); then
    # The cache holds 512 bodies; list offsets go up to 1023 and should return full pages.
    log "warning: with fewer than 1100 tasks the uncached cells are partly cached or short"
fi
curl -fsS -o /dev/null "$BASE/tasks/view/$VIEW_ID" || die "tasks/view/$VIEW_ID failed"
curl -fsS "$BASE/tasks/list/50" |
    python3 -c 'import json, sys; sys.exit(len(json.load(sys.stdin)["tasks"]) != 50)' ||
    die "tasks/list/50 did not return 50 tasks"
curl -fsS -X POST -H "Content-Type: multipart/form-data; boundary=x" \
    --data-binary $'--x\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc\r\n--x--\r\n' \
    "$BASE/tasks/create/file" | grep -q '"task_id"' || die "tasks/create/file failed"

CAPE_TOKEN="$("$NESTBOX" token create admin --config "$TMP/nestbox.toml")" || die "token create failed"
CAPE_AUTH="Token $CAPE_TOKEN"
curl -fsS -H "Authorization: $CAPE_AUTH" "$BASE/apiv2/tasks/view/$VIEW_ID/" | grep -q '"error":false' ||
    die "apiv2 tasks/view/$VIEW_ID failed"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/apiv2/tasks/view/$VIEW_ID/")" == 401 ]] ||
    die "apiv2 answers without a token"

AL_KEY="$("$NESTBOX" apikey add admin bench --priv RW --config "$TMP/nestbox.toml" | tail -n1)" ||
    die "apikey add failed"
AL_HEADERS=$'X-USER: admin\nX-APIKEY: '"$AL_KEY"
AL_SID="$(head -c 10240 /dev/urandom >"$TMP/al.bin" &&
    curl -fsS -H "X-USER: admin" -H "X-APIKEY: $AL_KEY" -F "bin=@$TMP/al.bin" "$BASE/api/v4/submit/" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["api_response"]["sid"])')" ||
    die "api/v4/submit failed"
curl -fsS -H "X-USER: admin" -H "X-APIKEY: $AL_KEY" "$BASE/api/v4/submission/$AL_SID/" |
    grep -q '"api_status_code": *200' || die "api/v4/submission/$AL_SID failed"

# One concurrency after the other, its ceiling first, so that a cell and its ceiling are
# measured close in time. Creates add tasks with higher ids: the viewed task and the first
# page of the list (oldest first) stay the same, so later reads measure the same thing.
# The plain view and list cells ask for one path again and again: after the first request
# nestbox answers them from its response cache (see README.md). The "uncached" cells cycle
# through more paths than the cache holds, so that every request renders from SQLite.
export BENCH_FILE_KIND="${BENCH_FILE_KIND:-binary}"
for c in $CONNECTIONS; do
    cell "hello (GET /)" "$c" "$HELLO_PID" "$HELLO_URL"
    cell "GET /tasks/view/$VIEW_ID" "$c" "$NESTBOX_PID" "$BASE/tasks/view/$VIEW_ID"
    BENCH_PATH_PREFIX=/tasks/view/ BENCH_VARY_FIRST=1 BENCH_VARY_COUNT="$TASKS" \
        cell "GET /tasks/view/<1..$TASKS> (uncached)" "$c" "$NESTBOX_PID" "$BASE/" "$HERE/vary_path.lua"
    cell "GET /tasks/list/50" "$c" "$NESTBOX_PID" "$BASE/tasks/list/50"
    BENCH_PATH_PREFIX=/tasks/list/50/ BENCH_VARY_FIRST=0 BENCH_VARY_COUNT=1024 \
        cell "GET /tasks/list/50/<0..1023> (uncached)" "$c" "$NESTBOX_PID" "$BASE/" "$HERE/vary_path.lua"
    cell "POST /tasks/create/file (10 KB $BENCH_FILE_KIND)" "$c" "$NESTBOX_PID" \
        "$BASE/tasks/create/file" "$HERE/create_file.lua"
    # CAPE /apiv2/ (Authorization: Token, throttling off).
    BENCH_AUTH="$CAPE_AUTH" cell "GET /apiv2/tasks/view/$VIEW_ID/ (token)" "$c" "$NESTBOX_PID" \
        "$BASE/apiv2/tasks/view/$VIEW_ID/" "$HERE/auth.lua"
    BENCH_AUTH="$CAPE_AUTH" BENCH_PATH_PREFIX=/apiv2/tasks/view/ BENCH_PATH_SUFFIX=/ BENCH_VARY_FIRST=1 BENCH_VARY_COUNT="$TASKS" \
        cell "GET /apiv2/tasks/view/<1..$TASKS>/ (token, uncached)" "$c" "$NESTBOX_PID" "$BASE/" "$HERE/vary_path.lua"
    BENCH_AUTH="$CAPE_AUTH" cell "GET /apiv2/tasks/list/50/ (token)" "$c" "$NESTBOX_PID" \
        "$BASE/apiv2/tasks/list/50/" "$HERE/auth.lua"
    BENCH_AUTH="$CAPE_AUTH" cell "POST /apiv2/tasks/create/file/ (token, 10 KB $BENCH_FILE_KIND)" "$c" "$NESTBOX_PID" \
        "$BASE/apiv2/tasks/create/file/" "$HERE/create_file.lua"
    # Assemblyline /api/v4/ (X-USER + X-APIKEY, quotas enforced).
    BENCH_HEADERS="$AL_HEADERS" cell "GET /api/v4/submission/<sid>/ (API key)" "$c" "$NESTBOX_PID" \
        "$BASE/api/v4/submission/$AL_SID/" "$HERE/auth.lua"
    BENCH_HEADERS="$AL_HEADERS" BENCH_FILE_FIELD=bin \
        cell "POST /api/v4/submit/ (API key, 10 KB $BENCH_FILE_KIND)" "$c" "$NESTBOX_PID" \
        "$BASE/api/v4/submit/" "$HERE/create_file.lua"
done
kill -0 "$NESTBOX_PID" 2>/dev/null || die "nestbox died during the run"
kill -0 "$HELLO_PID" 2>/dev/null || die "hello died during the run"
TASKS_AFTER="$(curl -fsS "$BASE/cuckoo/status" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["tasks"]["total"])' || echo '?')"
stop_server "$NESTBOX_PID"
stop_server "$HELLO_PID"

# --- the table ----------------------------------------------------------------------------
declare -A CEILING SEEN
LABELS=()
for row in "${ROWS[@]}"; do
    IFS='|' read -r label c rps _ <<<"$row"
    if [[ "$label" == hello* ]]; then CEILING[$c]="$rps"; fi
    if [[ -z "${SEEN[$label]:-}" ]]; then SEEN[$label]=1; LABELS+=("$label"); fi
done
DIRTY=""
if [[ -n "$(git -C "$ROOT" status --porcelain -- crates 2>/dev/null)" ]]; then
    DIRTY=" + uncommitted changes in crates/"
fi

echo
echo "nestbox HTTP API benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')," \
    "nestbox $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$DIRTY"
echo "machine: $NCPU CPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
    "kernel $(uname -r); load average before the run: $LOAD_BEFORE"
echo "servers on cpu $SERVER_CPU, wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}') -t1 on cpu" \
    "$CLIENT_CPU, scheduling ${PRIO[*]:-default}, ${DURATION} s per cell; $TASKS tasks before measuring," \
    "$TASKS_AFTER after; NESTBOX_LOG=${NESTBOX_LOG:-<unset: info,sqlx=warn>}"
echo
echo "| endpoint | c | req/s | p99 | ratio to hello | p90 | server CPU/req | server core busy |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for want in "${LABELS[@]}"; do
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label c rps p99 cpu_us busy p90 <<<"$row"
        [[ "$label" == "$want" ]] || continue
        awk -v l="$label" -v c="$c" -v r="$rps" -v p="$p99" -v h="${CEILING[$c]:-0}" \
            -v u="$cpu_us" -v b="$busy" -v p90="$p90" 'BEGIN {
            ratio = (h > 0) ? sprintf("%.2f", r / h) : "n/a"
            printf "| %s | %s | %.0f | %s ms | %s | %s ms | %s µs | %s %% |\n", l, c, r, p, ratio, p90, u, b
        }'
    done
done
if ((${#WARNINGS[@]})); then
    echo
    for w in "${WARNINGS[@]}"; do echo "warning: $w"; done
fi

#!/usr/bin/env bash
# bench/scale: the cluster layout on this box, release build (BENCHMARKS.md).
#
# 1. Tasks/hour with 1, 2 and 4 worker processes (`serve --role worker`, one worker
#    each) behind one API process (`--role api`), on PostgreSQL, static analysis only
#    (`[sandbox] machinery = "none"`): SCALE_TASKS distinct samples of SCALE_SIZE bytes
#    are queued through the API first, then the workers start and the clock runs until
#    /cuckoo/status counts them all reported.
# 2. API read throughput, PostgreSQL vs SQLite: one API process per engine holding
#    SCALE_READ_TASKS tasks, wrk on GET /tasks/view/<id> cycling through every id (more
#    paths than the response cache holds, so each request reads the store) and on
#    GET /tasks/list/50/<offset>, SCALE_READ_SECS each, 16 connections.
#
# PostgreSQL is the throw-away server of tests/pg/with-pg.sh (unix socket, fsync off);
# the blob store is one local directory shared by the processes of a run. Nothing is
# pinned: the box is shared, so the load (`uptime`) is printed before and after, and the
# figures to compare are the ratios within one run.
#
#   bench/scale/run.sh              (make bench-scale-nodes)
#   SCALE_TASKS=600 SCALE_WORKERS="1 2 4" SCALE_SIZE=32768 SCALE_READ_TASKS=2000 \
#   SCALE_READ_SECS=10 BENCH_SKIP_BUILD=1 bench/scale/run.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
if [[ -z ${NESTBOX_TEST_PG_URL:-} ]]; then
    exec "$root/tests/pg/with-pg.sh" "$0" "$@"
fi
TASKS="${SCALE_TASKS:-600}"
WORKERS="${SCALE_WORKERS:-1 2 4}"
SIZE="${SCALE_SIZE:-32768}"
READ_TASKS="${SCALE_READ_TASKS:-2000}"
READ_SECS="${SCALE_READ_SECS:-10}"
target="${CARGO_TARGET_DIR:-$root/target}"
load="$root/bench/scale/load.py"

log() { printf 'scale: %s\n' "$*" >&2; }
command -v wrk >/dev/null || { log "wrk is required (apt-get install wrk)"; exit 1; }
psql=""
for d in /usr/lib/postgresql/*/bin; do [[ -x $d/psql ]] && psql=$d/psql; done
[[ -n $psql ]] || psql=$(command -v psql)

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
    log "building (release)"
    (cd "$root" && cargo build --release -q -p nestbox-server)
fi
tmp=$(mktemp -d /tmp/nestbox-scale.XXXXXX)
pids=()
stop_all() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$tmp"' EXIT
# A copy, so that a build meanwhile (shared target dir) cannot swap the binary.
cp "$target/release/nestbox" "$tmp/nestbox"
nestbox="$tmp/nestbox"

# A fresh database on the test server; prints its URL.
database() {
    "$psql" -q "$NESTBOX_TEST_PG_URL" -c "CREATE DATABASE $1" >/dev/null
    printf '%s\n' "${NESTBOX_TEST_PG_URL/\/postgres\?//$1?}"
}

# start NAME CONFIG ARGS...: a nestbox process in the background, logging to NAME.log.
start() {
    local name=$1 config=$2
    shift 2
    NESTBOX_SERVER__PORT=0 "$nestbox" serve --config "$config" "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
}

# The base URL an API process logged (waits for its "listening" line).
base_of() {
    local addr="" i
    for ((i = 0; i < 300; i++)); do
        addr=$(grep -so 'listening addr=[0-9.:]*' "$tmp/$1.log" | head -n1 | cut -d= -f2 || true)
        [[ -n $addr ]] && break
        sleep 0.1
    done
    [[ -n $addr ]] || { cat "$tmp/$1.log" >&2; exit 1; }
    printf 'http://%s\n' "$addr"
}

# config NAME URL WORKERS: a configuration file with its own data dir; prints its path.
config() {
    local file="$tmp/$1.toml"
    cat >"$file" <<EOF
data_dir = "$tmp/$1-data"
[database]
url = "$2"
[analysis]
workers = $3
poll_interval_ms = 200
[sandbox]
machinery = "none"
[emulator]
enabled = false
EOF
    printf '%s\n' "$file"
}

load_before=$(uptime)
log "load before: $load_before"

# --- 1. tasks/hour by worker processes ----------------------------------------------
declare -A per_hour
for n in $WORKERS; do
    url=$(database "nodes$n")
    cfg=$(config "nodes$n" "$url" 1)
    start "api$n" "$cfg" --role api
    base=$(base_of "api$n")
    submit=$(python3 "$load" submit "$base" "$TASKS" 4 "$SIZE")
    log "$n worker process(es): $TASKS tasks queued in ${submit}s"
    for ((w = 1; w <= n; w++)); do
        start "worker$n-$w" "$cfg" --role worker --node "w$w"
    done
    took=$(python3 "$load" wait "$base" "$TASKS" 1800)
    per_hour[$n]=$(python3 -c "print(round($TASKS / $took * 3600))")
    log "$n worker process(es): $TASKS analysed in ${took}s = ${per_hour[$n]} tasks/hour"
    stop_all
done

# --- 2. API reads, PostgreSQL vs SQLite ----------------------------------------------
# wrk_rps NAME URL-PREFIX COUNT: req/s and p99 of GET prefix<n> cycling n over 1..COUNT.
wrk_rps() {
    BENCH_PATH_PREFIX=$2 BENCH_VARY_FIRST=1 BENCH_VARY_COUNT=$3 \
        wrk -t2 -c16 -d"${READ_SECS}s" --latency -s "$root/bench/api/vary_path.lua" "$1" \
        >"$tmp/wrk.txt"
    local rps p99
    if grep -q 'Non-2xx' "$tmp/wrk.txt"; then
        cat "$tmp/wrk.txt" >&2
        log "error: non-2xx answers on $2"
        exit 1
    fi
    rps=$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$tmp/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk.txt")
    printf '%s %s\n' "$rps" "$p99"
}
declare -A view list
for engine in sqlite postgres; do
    case $engine in
    sqlite) url="sqlite://$tmp/read-sqlite-data/nestbox.db" ;;
    postgres) url=$(database reads) ;;
    esac
    cfg=$(config "read-$engine" "$url" 0)
    start "read-$engine" "$cfg" --role api
    base=$(base_of "read-$engine")
    python3 "$load" submit "$base" "$READ_TASKS" 4 2048 >/dev/null
    view[$engine]=$(wrk_rps "$base" /tasks/view/ "$READ_TASKS")
    list[$engine]=$(wrk_rps "$base" /tasks/list/50/ "$((READ_TASKS - 50))")
    log "$engine: tasks/view ${view[$engine]}, tasks/list/50 ${list[$engine]} (req/s p99)"
    stop_all
done
load_after=$(uptime)

# --- report ----------------------------------------------------------------------------
echo
echo "load before: $load_before"
echo "load after:  $load_after"
echo
echo "| worker processes | tasks | tasks/hour | vs 1 process |"
echo "|---|---|---|---|"
first=""
for n in $WORKERS; do
    first=${first:-${per_hour[$n]}}
    echo "| $n | $TASKS | ${per_hour[$n]} | $(python3 -c "print(f'{${per_hour[$n]} / $first:.2f}')") |"
done
echo
echo "| endpoint | SQLite req/s (p99) | PostgreSQL req/s (p99) | PostgreSQL / SQLite |"
echo "|---|---|---|---|"
row() {
    local s_rps s_p99 p_rps p_p99
    read -r s_rps s_p99 <<<"$2"
    read -r p_rps p_p99 <<<"$3"
    echo "| $1 | $s_rps ($s_p99) | $p_rps ($p_p99) | $(python3 -c "print(f'{$p_rps / max($s_rps, 1):.2f}')") |"
}
row "GET /tasks/view/<id>" "${view[sqlite]}" "${view[postgres]}"
row "GET /tasks/list/50/<offset>" "${list[sqlite]}" "${list[postgres]}"

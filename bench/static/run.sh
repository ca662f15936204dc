#!/usr/bin/env bash
# Static-pass benchmark (`make bench-static`; see BENCHMARKS.md).
#
# Builds the release `nestbox`, generates the inputs (a 1 MB PE and a 20 MB PE built with
# mingw-w64 around an .incbin'd blob of mixed random/text data, and a mixed corpus of
# BENCH_FILES files: ELF binaries copied from /usr/bin, scripts, text, PEs, random blobs),
# and times on ONE core (taskset):
#   * `nestbox analyze -j1` (all hashes + ssdeep + TLSH + libmagic + PE/ELF + YARA with the
#     starter rules + strings), per file as (T(N+1 copies) - T(1 copy)) / N so start-up and
#     rule compilation are not counted;
#   * the baselines on the same files: `yara -p 1` with the same rules, and `ssdeep`.
# Prints a Markdown table.
#
#   BENCH_FILES=600       corpus size (>= 500)
#   BENCH_REPEAT=20       copies for the single-file cells
#   BENCH_CPU=1           core to pin to
#   BENCH_SKIP_BUILD=1    use target/release/nestbox as is
#   BENCH_BIN=path        measure this nestbox binary instead (implies no build)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
FILES="${BENCH_FILES:-600}"
REPEAT="${BENCH_REPEAT:-20}"
CPU="${BENCH_CPU:-1}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${BENCH_BIN:-$TARGET/release/nestbox}"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ] && [ -z "${BENCH_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p nestbox-server)
fi
for t in yara ssdeep x86_64-w64-mingw32-gcc taskset; do
  command -v "$t" >/dev/null || { echo "bench-static: $t is missing (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Mixed content: compressible text and incompressible bytes, like real binaries.
blob() { # size_bytes out
  python3 - "$1" "$2" <<'PY'
import os, sys
size, out = int(sys.argv[1]), sys.argv[2]
words = b"GetProcAddress LoadLibraryA http://example.invalid/path kernel32.dll the quick brown fox ".split()
chunks, n = [], 0
rnd = os.urandom(size)
while n < size:
    if (n // 4096) % 2:
        part = rnd[n:n + 4096]
    else:
        part = b" ".join(words[(n + i) % len(words)] for i in range(600))[:4096]
    chunks.append(part)
    n += len(part)
open(out, "wb").write(b"".join(chunks)[:size])
PY
}
pe_with_blob() { # size out
  blob "$1" "$work/blob.bin"
  cat >"$work/pe.c" <<C
#include <windows.h>
__asm__(".section .rdata,\"dr\"\n.globl blob\nblob:\n.incbin \"$work/blob.bin\"\n.text\n");
extern const char blob[];
int main(void) { return blob[GetTickCount() & 1023] + (int)(size_t)LoadLibraryA("user32.dll"); }
C
  x86_64-w64-mingw32-gcc -O1 -s -o "$2" "$work/pe.c"
}
pe_with_blob $((1000 * 1000)) "$work/pe_1mb.exe"
pe_with_blob $((20 * 1000 * 1000)) "$work/pe_20mb.exe"

corpus="$work/corpus"
mkdir -p "$corpus"
"$ROOT/tests/static/build-samples.sh" "$work/samples" >/dev/null
i=0
mapfile -t elfs < <(find /usr/bin -maxdepth 1 -type f -size -3M -size +8k | sort | head -n $((FILES * 2 / 5)))
for f in "${elfs[@]}"; do cp "$f" "$corpus/elf_$i"; i=$((i + 1)); done
for f in "$work"/samples/*; do cp "$f" "$corpus/sample_$i"; i=$((i + 1)); done
mapfile -t texts < <(find /usr/share/doc /usr/lib/python3* -type f \( -name '*.py' -o -name '*.txt' -o -name 'copyright' \) 2>/dev/null | sort | head -n $((FILES / 3)))
for f in "${texts[@]}"; do cp "$f" "$corpus/text_$i"; i=$((i + 1)); done
while [ "$i" -lt "$FILES" ]; do
  head -c $(((RANDOM % 256 + 1) * 1024)) /dev/urandom >"$corpus/random_$i"
  i=$((i + 1))
done
corpus_files=$(find "$corpus" -type f | wc -l)
corpus_bytes=$(du -sb "$corpus" | cut -f1)

cfg="$work/nestbox.toml"
printf 'data_dir = "%s/data"\n' "$work" >"$cfg"
pin() { taskset -c "$CPU" "$@"; }
seconds() { # command... → wall seconds
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
per_file_ms() { # file → ms per file for nestbox, excluding start-up
  local f=$1 many=()
  for _ in $(seq "$REPEAT"); do many+=("$f"); done
  local one n
  one=$(seconds pin "$BIN" analyze --config "$cfg" -j1 --format jsonl "$f")
  n=$(seconds pin "$BIN" analyze --config "$cfg" -j1 --format jsonl "$f" "${many[@]}")
  echo "($n - $one) * 1000 / $REPEAT" | bc -l
}
tool_per_file_ms() { # file command... → ms per file for a baseline, same subtraction
  # (the command pins itself: taskset cannot run a shell function such as yara_files)
  local f=$1
  shift
  local many=()
  for _ in $(seq "$REPEAT"); do many+=("$f"); done
  local one n
  one=$(seconds "$@" "$f")
  n=$(seconds "$@" "$f" "${many[@]}")
  echo "($n - $one) * 1000 / $REPEAT" | bc -l
}
rules=("$ROOT"/rules/*.yar)
# The yara CLI takes one target: a directory of hard links stands for a file list.
yara_files() { local d="$work/ylinks"; rm -rf "$d"; mkdir -p "$d"; local k=0; for f in "$@"; do ln "$f" "$d/$k"; k=$((k + 1)); done; pin yara -w -p 1 "${rules[@]}" "$d"; }

line() { # input tool size_bytes ms_per_file
  printf '| %s | %s | %.1f | %.0f |\n' "$1" "$2" "$4" "$(echo "$3 / 1000000 / ($4 / 1000)" | bc -l)"
}
echo "| input | tool | ms/file | MB/s (1 core) |"
echo "|---|---|---:|---:|"
for f in "$work/pe_1mb.exe" "$work/pe_20mb.exe"; do
  size=$(stat -c %s "$f")
  name="$(basename "$f") ($((size / 1000)) KB)"
  line "$name" "nestbox analyze (full static pass)" "$size" "$(per_file_ms "$f")"
  line "$name" "yara CLI (starter rules)" "$size" "$(tool_per_file_ms "$f" yara_files)"
  line "$name" "ssdeep" "$size" "$(tool_per_file_ms "$f" pin ssdeep -s)"
done
mapfile -t cfiles < <(find "$corpus" -type f | sort)
avg=$((corpus_bytes / corpus_files))
name="corpus: $corpus_files files, $((corpus_bytes / 1000000)) MB"
t=$(seconds pin "$BIN" analyze --config "$cfg" -j1 --format jsonl "${cfiles[@]}")
t0=$(seconds pin "$BIN" analyze --config "$cfg" -j1 --format jsonl "${cfiles[0]}")
line "$name" "nestbox analyze (full static pass)" "$avg" "$(echo "($t - $t0) * 1000 / ($corpus_files - 1)" | bc -l)"
t=$(seconds pin yara -w -p 1 -r "${rules[@]}" "$corpus")
line "$name" "yara CLI (starter rules, incl. start-up)" "$avg" "$(echo "$t * 1000 / $corpus_files" | bc -l)"
t=$(seconds pin ssdeep -s -r "$corpus")
line "$name" "ssdeep (incl. start-up)" "$avg" "$(echo "$t * 1000 / $corpus_files" | bc -l)"
t=$(seconds "$BIN" analyze --config "$cfg" -j2 --format jsonl "${cfiles[@]}")
printf '| %s | %s | %.1f | %.0f (2 cores) |\n' "$name" "nestbox analyze -j2 (incl. start-up)" "$(echo "$t * 1000 / $corpus_files" | bc -l)" "$(echo "$corpus_bytes / 1000000 / $t" | bc -l)"

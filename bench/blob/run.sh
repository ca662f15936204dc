#!/usr/bin/env bash
# Blob store throughput, local directory vs S3 (SeaweedFS on loopback, see
# tests/s3/weed.sh): put_file, streamed read and local copy of FILES files of SIZE_MIB
# each. Results in BENCHMARKS.md. Usage: bench/blob/run.sh [SIZE_MIB] [FILES]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
size="${1:-64}"
files="${2:-8}"
source "$root/tests/s3/weed.sh"
cargo build -q -p nestbox-store --example blob_bench
bin="${CARGO_TARGET_DIR:-$root/target}/debug/examples/blob_bench"
"$bin" local "$size" "$files"
"$bin" s3 "$size" "$files"

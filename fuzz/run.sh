#!/usr/bin/env bash
# Fuzzes every target (or the ones named as arguments) for FUZZ_SECONDS seconds each, one
# at a time. New inputs accumulate in work/corpus/<target>/ (git-ignored); the checked-in
# seeds in corpus/<target>/ and reproducers in regressions/<target>/ are read, not written.
# A crash leaves its input in artifacts/<target>/ and the run goes on with the next target;
# the exit status is non-zero if any target failed.
#
#   FUZZ_SECONDS=60      seconds per target
#   FUZZ_SANITIZER=address   or none (faster, catches panics/aborts only)
#   FUZZ_ARGS="..."      extra libFuzzer flags, e.g. "-max_len=65536 -jobs=2"
set -uo pipefail
cd "$(dirname "$0")" || exit 1

seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-address}
# The only toolchain is stable; cargo-fuzz's `-Zsanitizer` needs this to be accepted.
export RUSTC_BOOTSTRAP=1

if (($#)); then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi

# --features yara: the yara_scan target needs the YARA engine (see Cargo.toml).
cargo fuzz build --sanitizer "$sanitizer" --features yara || exit 1

failed=()
for t in "${targets[@]}"; do
  echo "=== fuzz: $t for ${seconds}s"
  mkdir -p "work/corpus/$t" "artifacts/$t"
  dirs=("work/corpus/$t" "corpus/$t")
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
  if ! cargo fuzz run --sanitizer "$sanitizer" --features yara "$t" "${dirs[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 ${FUZZ_ARGS:-}; then
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a failure"

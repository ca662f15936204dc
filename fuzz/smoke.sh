#!/usr/bin/env bash
# Cheap check, fit for `make test`: builds every fuzz target and runs each one over its
# checked-in seeds (corpus/<target>/) and crash reproducers (regressions/<target>/) only,
# with no fuzzing (`-runs=0`). Fails if any input panics, aborts or trips the sanitizer.
#
#   FUZZ_SANITIZER=address   or none
set -uo pipefail
cd "$(dirname "$0")" || exit 1

sanitizer=${FUZZ_SANITIZER:-address}
# The only toolchain is stable; cargo-fuzz's `-Zsanitizer` needs this to be accepted.
export RUSTC_BOOTSTRAP=1

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked || exit 1
# yara_scan needs the `yara` feature (a long yara-x build): replayed only with FUZZ_YARA=1.
features=()
[ "${FUZZ_YARA:-0}" = 1 ] && features=(--features yara)
cargo fuzz build --sanitizer "$sanitizer" "${features[@]}" || exit 1

failed=()
targets=$(cargo fuzz list)
for t in $targets; do
  if [ "$t" = yara_scan ] && [ "${FUZZ_YARA:-0}" != 1 ]; then
    targets=${targets//yara_scan/}
    continue
  fi
  dirs=("corpus/$t")
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  if ! out=$(RUST_BACKTRACE=1 cargo fuzz run --sanitizer "$sanitizer" "${features[@]}" "$t" "${dirs[@]}" -- -runs=0 2>&1); then
    # The panic or sanitizer message and the input that caused it (a copy is saved in
    # artifacts/<target>/), without the stack frames.
    echo "$out" | grep -vE '^ +[0-9]+: |^ +at |^ +#[0-9]+ ' |
      sed -n '/panicked at\|ERROR: AddressSanitizer\|ALARM:\|ERROR: libFuzzer/,/^Base64/p' | head -40 >&2
    echo "fuzz smoke: $t FAILED" >&2
    failed+=("$t")
  fi
done

if ((${#failed[@]})); then
  echo "fuzz smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz smoke: $(wc -w <<<"$targets") targets passed over their seeds and regressions"

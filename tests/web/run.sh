#!/usr/bin/env bash
# Browser tests of the web UI (see ui.mjs). Installs playwright-core (only the driver; the
# browser is Debian's chromium from scripts/bootstrap.sh) into tests/web/node_modules.
# Usage: tests/web/run.sh [path to the nestbox binary]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$here/../../target}/debug/nestbox}"
out="$here/out"
[ -x "$bin" ] || { echo "web-test: no nestbox binary at $bin (cargo build first)" >&2; exit 1; }
command -v node >/dev/null || { echo "web-test: node is missing (scripts/bootstrap.sh)" >&2; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "web-test: chromium is missing (scripts/bootstrap.sh)" >&2; exit 1; }
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi
rm -rf "$out"
exec timeout 170 node "$here/ui.mjs" "$bin" "$out"

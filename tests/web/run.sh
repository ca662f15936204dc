#!/usr/bin/env bash
# Browser tests of the web UI (see ui.mjs). Installs playwright-core (only the driver; the
# browser is Debian's chromium from scripts/bootstrap.sh) and vnu-jar (the Nu HTML Checker,
# run with the system's java) into tests/web/node_modules.
# Usage: tests/web/run.sh [path to the nestbox binary]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$here/../../target}/debug/nestbox}"
out="$here/out"
[ -x "$bin" ] || { echo "web-test: no nestbox binary at $bin (cargo build first)" >&2; exit 1; }
command -v node >/dev/null || { echo "web-test: node is missing (scripts/bootstrap.sh)" >&2; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "web-test: chromium is missing (scripts/bootstrap.sh)" >&2; exit 1; }
command -v java >/dev/null || { echo "web-test: java is missing (scripts/bootstrap.sh: openjdk-17)" >&2; exit 1; }
if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -f "$here/node_modules/vnu-jar/build/dist/vnu.jar" ]; then
  # --ignore-scripts: vnu-jar's postinstall would fetch a JRE when none is found; the
  # system's openjdk runs the jar.
  (cd "$here" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
rm -rf "$out"
exec timeout 170 node "$here/ui.mjs" "$bin" "$out"

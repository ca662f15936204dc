#!/usr/bin/env bash
# Runs the real upstream client libraries against a real nestbox server.
# Usage: tests/clients/run.sh path/to/nestbox
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
venv="$root/.venv-clients"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
NESTBOX_BIN="$bin" "$venv/bin/python" -m unittest discover -s "$here" -p 'test_*.py' -v

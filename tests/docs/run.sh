#!/usr/bin/env bash
# Cross-checks nestbox's document analyzers against the reference tools: olevba (PyPI
# oletools) for VBA extraction (Word/Excel/PowerPoint 97, OOXML), keyword flags and XLM
# macro sheets, olefile for OLE metadata, pdfid for PDF keyword counts.
# Usage: tests/docs/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/.venv-docs"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
cd "$root"
NESTBOX_DOCREF_PYTHON="$venv/bin/python" NESTBOX_DOCREF_SCRIPT="$here/reference.py" \
  cargo test -p nestbox-analyzers --test documents_reference -- --ignored --nocapture

#!/usr/bin/env bash
# Installs the pinned speakeasy-emulator into .cache/speakeasy-venv (git-ignored), the venv
# the integration tests share; exactly what the server does on first use (same pins, same
# marker file), so a server pointed at it does not reinstall. Does nothing when present.
set -euo pipefail
cd "$(dirname "$0")/.."
req=crates/nestbox-emulator/speakeasy-requirements.txt
venv=.cache/speakeasy-venv
if [ -f "$venv/nestbox-requirements.txt" ] && cmp -s "$req" "$venv/nestbox-requirements.txt"; then
  exit 0
fi
echo "emulator-venv: installing speakeasy-emulator into $venv"
staging=".cache/.speakeasy-venv.installing-$$"
rm -rf "$staging"
mkdir -p .cache
/usr/bin/python3 -m venv "$staging"
"$staging/bin/python3" -m pip install --quiet --disable-pip-version-check --no-input --prefer-binary -r "$req"
"$staging/bin/python3" -c "import speakeasy"
cp "$req" "$staging/nestbox-requirements.txt"
rm -rf "$venv"
mv "$staging" "$venv"

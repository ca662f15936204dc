#!/usr/bin/env bash
# Installs what building, serving and testing nestbox needs on Debian, only where missing.
# Safe to run repeatedly: it does nothing when everything is present.
set -euo pipefail

packages=(build-essential pkg-config libmagic-dev libmagic-mgc file ssdeep bubblewrap strace iproute2 python3-venv python3-pip curl ca-certificates wrk chromium xvfb x11-apps nftables gcc-mingw-w64-x86-64-win32 zip xz-utils zstd openjdk-17-jdk-headless qemu-utils postgresql yara gcc-mingw-w64-x86-64 gcc-mingw-w64-i686 bc osslsigncode busybox-static genisoimage mupdf gcab unar)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The browser tests (make web-test) drive chromium with Node's playwright-core. Debian's
# nodejs ships without npm, a NodeSource nodejs with it: install npm only when missing.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# QEMU for the `qemu` machinery's real-guest test. Debian 12's qemu-system-x86 (7.2) would
# remove the preinstalled qemu-utils 10 (it Breaks qemu-system-common << 8.0), so take the
# matching 10.x from bookworm-backports through a private apt configuration; the system's
# sources stay as they are.
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  echo "bootstrap: installing qemu-system-x86 from bookworm-backports"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  bpo=/var/cache/nestbox-apt-bpo
  $SUDO mkdir -p "$bpo/lists/partial" "$bpo/archives/partial"
  key=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'deb [signed-by=%s] http://deb.debian.org/debian %s main\n' \
    "$key" bookworm "$key" bookworm-updates "$key" bookworm-backports |
    $SUDO tee "$bpo/sources.list" >/dev/null
  printf 'deb [signed-by=%s] http://deb.debian.org/debian-security bookworm-security main\n' "$key" |
    $SUDO tee -a "$bpo/sources.list" >/dev/null
  apt_bpo=(-o "Dir::Etc::sourcelist=$bpo/sources.list" -o Dir::Etc::sourceparts=- \
    -o "Dir::State::lists=$bpo/lists" -o "Dir::Cache::archives=$bpo/archives")
  $SUDO apt-get "${apt_bpo[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${apt_bpo[@]}" install -y -qq --no-install-recommends \
    -t bookworm-backports qemu-system-x86 >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "bootstrap: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
# rust-toolchain.toml pins the version; make sure it and its components are there.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install

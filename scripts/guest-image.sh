#!/usr/bin/env bash
# Builds the small Linux guest the `qemu` machinery boots under TCG in the tests:
#   vmlinuz      Debian's cloud kernel (lz4: fast to decompress under TCG), from its .deb
#   initrd.gz    busybox-static + the virtio modules; mounts /dev/vda as / and switch_roots
#   rootfs.qcow2 ext4 root: busybox, strace (with its shared libraries), nestbox-agent as
#                the service started at boot (Cuckoo 0.10 dialect on :8000), static IP
#                10.0.2.15 on slirp's network
# Usage: scripts/guest-image.sh <nestbox-agent binary> [out dir, default .cache/guest-linux]
# Prints the out dir. Cached: rebuilt only when this script, the agent or strace change
# (a few seconds; the kernel .deb is downloaded once into .cache/guest-linux-debs).
set -euo pipefail
agent=$(realpath "$1")
root_dir=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root_dir/.cache/guest-linux}
debs=$root_dir/.cache/guest-linux-debs
for tool in busybox mke2fs qemu-img strace dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "guest-image: $tool missing (scripts/bootstrap.sh)" >&2; exit 1; }
done
key=$(cat "$0" "$agent" "$(command -v strace)" | sha256sum | cut -c1-16)
if [ -f "$out/key" ] && [ "$(cat "$out/key")" = "$key" ]; then
  echo "$out"
  exit 0
fi

# The kernel: the cloud flavour's current ABI package, downloaded once.
mkdir -p "$debs"
if ! ls "$debs"/linux-image-*-cloud-amd64_*.deb >/dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -1)
  [ -n "$pkg" ] || { echo "guest-image: no linux-image-cloud-amd64 in apt (apt-get update?)" >&2; exit 1; }
  (cd "$debs" && apt-get download "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
fi
deb=$(ls "$debs"/linux-image-*-cloud-amd64_*.deb | head -1)
[ -f "$deb" ] || { echo "guest-image: kernel download failed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/nestbox-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/k"
kver=$(ls "$work/k/lib/modules" | head -1)

# initramfs: just enough to find the virtio disk.
ir=$work/initrd
mkdir -p "$ir"/{bin,dev,proc,sys,newroot,lib/modules/"$kver"}
cp "$(command -v busybox)" "$ir/bin/busybox"
for m in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko drivers/virtio/virtio_pci_legacy_dev.ko \
  drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci.ko drivers/block/virtio_blk.ko \
  net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko; do
  mkdir -p "$ir/lib/modules/$kver/kernel/$(dirname "$m")"
  cp "$work/k/lib/modules/$kver/kernel/$m" "$ir/lib/modules/$kver/kernel/$m"
done
cp "$work/k/lib/modules/$kver/modules.order" "$work/k/lib/modules/$kver/modules.builtin" "$ir/lib/modules/$kver/" 2>/dev/null || true
busybox depmod -b "$ir" "$kver"
cat >"$ir/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox modprobe -a virtio_pci virtio_blk virtio_net
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; /bin/busybox sleep 0.1; done
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "nestbox-guest: no root disk"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/nestbox-init
EOF
chmod 755 "$ir/init"
(cd "$ir" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null | gzip -1n) >"$work/initrd.gz"

# The root file system.
r=$work/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,var/tmp,opt/nestbox}
chmod 1777 "$r/tmp" "$r/var/tmp"
cp "$(command -v busybox)" "$r/bin/busybox"
for a in $(busybox --list-full); do
  [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
done
cp "$agent" "$r/opt/nestbox/nestbox-agent"
cp "$(command -v strace)" "$r/usr/bin/strace"
# Shared libraries of strace and the agent (and the dynamic loader), from the host's
# Debian packages.
for bin in "$(command -v strace)" "$agent"; do
  ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$r$(dirname "$lib")"
    cp -L "$lib" "$r$lib"
  done
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\n' >"$r/etc/group"
printf '127.0.0.1 localhost\n' >"$r/etc/hosts"
printf 'nameserver 10.0.2.3\n' >"$r/etc/resolv.conf"
cat >"$r/sbin/nestbox-init" <<'EOF'
#!/bin/sh
# PID 1 of the guest: mounts, the network slirp expects, and the agent as a service that
# is restarted if it dies. A state saved from here resumes with the agent listening.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -o remount,rw /
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "nestbox-guest: up" >/dev/console
echo "nestbox guest: agent on :8000" >/dev/tty0 2>/dev/null
cd /root
while true; do
  /opt/nestbox/nestbox-agent 0.0.0.0 8000 </dev/null >/dev/console 2>&1
  echo "nestbox-guest: agent exited, restarting" >/dev/console
  sleep 1
done
EOF
chmod 755 "$r/sbin/nestbox-init"
# 64 MiB ext4 (mke2fs fills it from the tree; no root or loop devices needed).
mke2fs -q -t ext4 -O ^has_journal -E root_owner=0:0 -L nestbox-root -d "$r" "$work/rootfs.raw" 64M >/dev/null
qemu-img convert -q -f raw -O qcow2 "$work/rootfs.raw" "$work/rootfs.qcow2"

mkdir -p "$out"
rm -f "$out/key"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz"
mv "$work/initrd.gz" "$work/rootfs.qcow2" "$out/"
printf 'kernel %s (%s)\nbusybox %s\nstrace %s\n' "$kver" "$(basename "$deb")" \
  "$(busybox 2>&1 | head -1)" "$(strace -V | head -1)" >"$out/manifest"
# A saved state belongs to the old disk; it must not outlive it.
rm -f "$out"/*.state
echo "$key" >"$out/key"
echo "$out"

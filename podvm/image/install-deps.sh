#!/usr/bin/env bash
# Installs what the local pod VM path needs on a Debian bookworm machine (CI and the README's
# quick start): libvirt + QEMU (run by hand, no systemd), the image builder's tools, and
# libvirt-dev for building the libvirt plugin. Safe to run twice.
set -euo pipefail

want=(libvirt-dev pkg-config libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system
    libvirt-clients qemu-system-x86 busybox-static cpio kmod dnsmasq-base iptables iproute2
    qemu-utils binutils)
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Machine images may carry qemu-utils from bookworm-backports (10.x), whose Breaks blocks
# bookworm's qemu-system 7.2: take bookworm's qemu-utils instead (testbeds-local.md §2).
qemu_utils=qemu-utils
if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q '^1:[89]\|^1:1[0-9]'; then
    missing+=(qemu-utils)
fi
if ((${#missing[@]} == 0)); then
    echo "install-deps: everything is installed"
    exit 0
fi
apt-get update -q
version=$(apt-cache madison qemu-utils | awk -F'|' '$3 !~ /backports/ && $2 ~ /^ *1:7/ {gsub(/ /, "", $2); print $2; exit}')
[[ -n "$version" ]] && qemu_utils="qemu-utils=$version"
pkgs=()
for p in "${missing[@]}"; do
    [[ "$p" == qemu-utils ]] && continue
    pkgs+=("$p")
done
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades --no-install-recommends \
    "$qemu_utils" "${pkgs[@]}"

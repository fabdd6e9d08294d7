#!/usr/bin/env bash
# Builds the local TEST pod VM image for libvirt/QEMU: the Debian cloud kernel and an initramfs
# holding our pod VM programs (process-user-data, agent-protocol-forwarder, and the TEST kata
# agent caa-test-kata-agent), busybox, iproute2 and the kernel modules the VM needs. Real pod VM
# images carry the real kata-agent; this one exists so a pod sandbox can be walked through its
# lifecycle on a laptop or CI machine without a cloud account.
#
# usage: podvm/image/build.sh OUT_DIR BIN_DIR
#   BIN_DIR holds the three binaries (e.g. target/release).
# writes OUT_DIR/{vmlinuz,initrd.img,base.qcow2,manifest.txt}; the same inputs give the same bytes
# (sorted cpio with fixed mtimes, gzip -n). Needs: apt-get, dpkg, kmod, cpio, busybox-static,
# iproute2, qemu-utils (installed by podvm/image/install-deps.sh).
set -euo pipefail

out=${1:?usage: build.sh OUT_DIR BIN_DIR}
bins=${2:?usage: build.sh OUT_DIR BIN_DIR}
here=$(cd "$(dirname "$0")" && pwd)
programs=(process-user-data agent-protocol-forwarder caa-test-kata-agent)
# vxlan for the pod network tunnel; nf_tables + nft_ct for its conntrack bypass (notrack).
modules=(virtio_pci virtio_net virtio_blk ata_piix sr_mod isofs vxlan nf_tables nft_ct)

for p in "${programs[@]}"; do
    [[ -x "$bins/$p" ]] || { echo "build.sh: $bins/$p is missing (build the workspace first)" >&2; exit 1; }
done
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The kernel: whatever Debian's cloud kernel metapackage points at today, recorded in the manifest.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n "$kpkg" ]] || { echo "build.sh: no linux-image-cloud-amd64 in apt (run apt-get update)" >&2; exit 1; }
kver=${kpkg#linux-image-}
cache=${PODVM_CACHE:-/var/cache/caa-podvm}
mkdir -p "$cache"
if ! ls "$cache/${kpkg}"_*.deb >/dev/null 2>&1; then
    (cd "$cache" && apt-get download "$kpkg" 2>/dev/null)
fi
deb=$(ls "$cache/${kpkg}"_*.deb | head -1)
dpkg -x "$deb" "$work/k"
depmod -b "$work/k" "$kver"

root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,media/cidata,lib/modules,usr/bin}
cp /bin/busybox "$root/bin/busybox"

# Modules in load order, dependencies first.
for m in "${modules[@]}"; do
    modprobe -d "$work/k" -S "$kver" --show-depends "$m"
done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' >"$work/modules"
while read -r ko; do
    cp "$ko" "$root/lib/modules/"
    basename "$ko" >>"$root/etc/modules.order"
done <"$work/modules"

# Dynamically linked programs with the libraries they load.
copy_with_libs() {
    local src=$1 dst=$2
    install -D -m 0755 "$src" "$root$dst"
    # Our programs ship without debug info: a smaller initramfs boots faster under TCG.
    [[ "$dst" == /usr/bin/* ]] && strip --strip-debug "$root$dst"
    ldd "$src" | awk '/=> \// {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
        [[ -e "$root$lib" ]] || install -D -m 0755 "$lib" "$root$lib"
    done
}
copy_with_libs "$(command -v ip)" /sbin/ip
for p in "${programs[@]}"; do
    copy_with_libs "$bins/$p" "/usr/bin/$p"
done

install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/udhcpc.script" "$root/etc/udhcpc.script"

# Reproducible archive: fixed mtimes, sorted names, no gzip timestamp.
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null --create --format=newc --reproducible --quiet) |
    gzip -n -6 >"$out/initrd.img"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz"
# The VM runs from its initramfs; the root volume overlays an empty base image.
rm -f "$out/base.qcow2"
qemu-img create -q -f qcow2 "$out/base.qcow2" 64M

{
    echo "kernel: $kpkg ($(basename "$deb"))"
    echo "busybox: $(dpkg-query -W -f='${Version}' busybox-static)"
    echo "iproute2: $(dpkg-query -W -f='${Version}' iproute2)"
    for p in "${programs[@]}"; do echo "$p: $(sha256sum "$bins/$p" | cut -d' ' -f1)"; done
    echo "initrd.img: $(sha256sum "$out/initrd.img" | cut -d' ' -f1)"
} >"$out/manifest.txt"
echo "build.sh: pod VM image in $out ($(du -h "$out/initrd.img" | cut -f1) initrd, kernel $kver)"

#!/bin/sh
# Builds the Debian package from a clean copy of the committed tree (git
# archive HEAD, so nothing of the build folder comes along), lists it, and
# tries it: extracted into a temporary root (dpkg-deb -x), its aec compiles
# examples/simple.ae and the program trains one short epoch; pkg-config finds
# aert.pc there. With --chroot DIR (root, a Debian chroot made by e.g.
# `debootstrap --variant=minbase bookworm DIR`, network to the archive) it
# also installs the package there with apt-get, which pulls its Depends, and
# trains with the installed /usr/bin/aec. Not part of make check: it needs
# dpkg-dev (and debootstrap's chroot), which CI does not install.
#   sh scripts/check-deb.sh [--chroot DIR]
set -eu
chroot_dir=""
if [ "${1:-}" = "--chroot" ]; then chroot_dir=$2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^#define AEC_VERSION "\(.*\)"/\1/p' "$root/compiler/ir/ir.h")
work=$(mktemp -d)
git -C "$root" archive --prefix="aec-$version/" HEAD | tar -x -C "$work"
(cd "$work/aec-$version" && dpkg-buildpackage -us -uc -b > "$work/build.log" 2>&1) ||
  { tail -30 "$work/build.log"; echo "check-deb: dpkg-buildpackage failed; log in $work/build.log" >&2; exit 1; }
deb=$(ls "$work"/aec_"$version"_*.deb)
echo "check-deb: built $deb"
dpkg-deb -c "$deb"

mkdir "$work/root" "$work/try"
dpkg-deb -x "$deb" "$work/root"
cd "$work/try"
env -u AEC_RUNTIME_DIR "$work/root/usr/bin/aec" "$work/root/usr/share/aec/examples/simple.ae" -o simple
./simple train --epochs 1 --batches 5 --test none --checkpoint simple.safetensors
PKG_CONFIG_PATH="$work/root/usr/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$work/root" pkg-config --cflags --libs aert

if [ -n "$chroot_dir" ]; then
  cp "$deb" "$chroot_dir/root/"
  mountpoint -q "$chroot_dir/proc" || { mount -t proc proc "$chroot_dir/proc"; trap 'umount "$chroot_dir/proc"' EXIT; }
  chroot "$chroot_dir" sh -euc "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq;
    apt-get install --reinstall -y -qq /root/$(basename "$deb") > /dev/null; mkdir -p /root/aec-try; cd /root/aec-try;
    aec /usr/share/aec/examples/simple.ae -o simple; ./simple train --epochs 1 --batches 5 --test none;
    aec /usr/share/aec/examples/deep.ae -o deep.c; cc deep.c \$(pkg-config --cflags --libs aert) -o deep;
    ./deep summary > /dev/null; echo 'check-deb: installed in the chroot, compiled and trained'"
fi
rm -rf "$work"
echo "check-deb: ok"

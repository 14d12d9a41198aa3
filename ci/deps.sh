#!/bin/sh
# Install the Debian packages nodebake's build and tests use, if any is
# missing. Idempotent: with everything installed it only runs dpkg-query.
set -eu
packages="
mmdebstrap
bubblewrap
qemu-system-x86
qemu-utils
ovmf
systemd-boot-efi
dosfstools
e2fsprogs
gdisk
fdisk
squashfs-tools
tar
ca-certificates
gcc
libc6-dev
pkg-config
libseccomp-dev
iptables
iproute2
dnsmasq-base
ignition
libxml2-utils
syslinux
syslinux-common
mtools
xorriso
isolinux
ipxe-qemu
socat
"
missing=""
for p in $packages; do
	status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
	case "$status" in
	*" installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "ci/deps.sh: missing packages:$missing; run as root, or install them" >&2
	exit 1
fi
echo "ci/deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing

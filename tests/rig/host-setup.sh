#!/usr/bin/env bash
# Install what the rig needs on the host (Debian 12, root). Idempotent: installs only what is missing.
set -euo pipefail

PACKAGES=(
  debootstrap systemd-container nftables iptables iproute2 bridge-utils xfsprogs util-linux
  apt-cacher-ng curl python3 iputils-ping tcpdump kmod xz-utils
  # the VPC's DHCP and resolver (tests/rig/vpc_services.py)
  dnsmasq-base
  # the nodes' veths hand over finished checksums, as a NIC does (tests/rig/node-launch.sh)
  ethtool
  # Horizon in a real browser from the rig's internet side (tests/rig/horizon_browser.py)
  chromium chromium-driver
  # the openstack CLI of a remote operator, from the rig's internet side (tests/rig/remote_cli.py)
  python3-openstackclient python3-osc-placement
  # test image: kernel and busybox come from the archive through the cache; these build the disk
  cpio dosfstools mtools syslinux syslinux-common qemu-utils
)
# qemu-system-x86 is optional (boots the test image once as a self-test); install with RIG_QEMU=1
if [[ "${RIG_QEMU:-0}" == 1 ]]; then PACKAGES+=(qemu-system-x86); fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "host-setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # apt-cacher-ng's package would start its own daemon on the default port; the rig runs its own instance.
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Kernel modules the nodes need (they cannot load modules themselves).
for mod in bridge br_netfilter vxlan veth tun loop xfs ip_tables iptable_nat iptable_filter iptable_mangle \
           ip6_tables nf_nat nf_conntrack nft_chain_nat nf_tables ebtables 8021q; do
  modprobe -q "$mod" 2>/dev/null || true
done
echo "host-setup: ok"

#!/usr/bin/env bash
# Builds the boot proof's disk once: Debian 12 as the official EC2 AMI has it where the userdata looks (cloud-init
# with the Ec2 datasource, netplan rendering for systemd-networkd, the cloud kernel), plus the guest probe.
# Usage: build-image.sh OUT_DIR APT_PROXY_URL GUEST_PROXY_URL [STAGE...]
# Writes OUT_DIR/{disk.img,vmlinuz,initrd.img,.complete}; packages come through APT_PROXY_URL (the host cache).
# STAGEs (default all, in order): bootstrap packages configure disk; naming later ones resumes a failed build.
set -euo pipefail
out=$1 host_proxy=$2 guest_proxy=$3
shift 3
stages=("$@")
((${#stages[@]})) || stages=(bootstrap packages configure disk)
here=$(cd "$(dirname "$0")" && pwd)
root=$out/rootfs.tmp
# debootstrap cannot resolve virtual packages (python3-cryptography's cffi API range), so it lays down minbase
# only and apt installs the rest.
packages=(
  linux-image-cloud-amd64 initramfs-tools systemd-sysv udev dbus cloud-init netplan.io isc-dhcp-client
  curl ca-certificates python3 iproute2 iputils-ping procps
)

bootstrap() {
  rm -rf "$root" "$out/disk.img" "$out/.complete"
  mkdir -p "$out"
  http_proxy=$host_proxy debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
}

packages() {
  printf 'Acquire::http::Proxy "%s";\n' "$host_proxy" > "$root/etc/apt/apt.conf.d/01boot-proof-proxy"
  mount -t proc proc "$root/proc"
  local rc=0
  { chroot "$root" apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends "${packages[@]}"
  } || rc=$?
  umount "$root/proc"
  return "$rc"
}

configure() {
  echo 'LABEL=root / ext4 defaults,discard 0 1' > "$root/etc/fstab"
  echo debian > "$root/etc/hostname"
  # What the installer (and so the AMI) writes; minbase has no /etc/hosts, and userdata edits it in place.
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' \
    > "$root/etc/hosts"
  # As on a cloud image: a fresh machine id on first boot, the journal kept across boots.
  : > "$root/etc/machine-id"
  mkdir -p "$root/var/log/journal"
  # The AMI's cloud-init setting that matters here: only the Ec2 datasource.
  echo 'datasource_list: [ Ec2, None ]' > "$root/etc/cloud/cloud.cfg.d/90_dpkg.cfg"
  # The test network has no way out: apt goes through the host cache, relayed on the VPC's .2 service address.
  printf 'Acquire::http::Proxy "%s";\n' "$guest_proxy" > "$root/etc/apt/apt.conf.d/01boot-proof-proxy"
  chroot "$root" systemctl enable systemd-networkd.service
  install -m 0755 "$here/guest/osa_boot_probe.py" "$root/usr/local/sbin/osa-boot-probe"
  install -m 0644 "$here"/guest/*.service "$root/etc/systemd/system/"
  chroot "$root" systemctl enable osa-boot-probe.service osa-boot-probe-down.service
  # As the AMI: no package lists until the first apt-get update.
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/*
  cp -L "$root/vmlinuz" "$out/vmlinuz"
  cp -L "$root/initrd.img" "$out/initrd.img"
}

disk() {
  # One ext4 partition at 1 MiB, filled from the tree (mkfs -d: no loop device or mount needed).
  local part=$out/root.part size_mib=6144
  rm -f "$part" "$out/disk.img"
  truncate -s "${size_mib}M" "$part"
  mkfs.ext4 -q -L root -d "$root" "$part"
  truncate -s $((size_mib + 2))M "$out/disk.img"
  printf 'label: dos\nstart=2048, size=%d, type=83\n' $((size_mib * 2048)) | sfdisk -q "$out/disk.img"
  dd if="$part" of="$out/disk.img" bs=1M seek=1 conv=notrunc,sparse status=none
  rm -rf "$part" "$root"
  date -u +%FT%TZ > "$out/.complete"
}

for stage in "${stages[@]}"; do
  echo "build-image: $stage"
  "$stage"
done

#!/usr/bin/env bash
# Build the rig's test image: Debian's kernel + a busybox initramfs on a syslinux-booted FAT disk, as qcow2
# (named .img like cirros's disk image, which is qcow2 too). Packages come from Debian's archive through the
# rig's apt cache (127.0.0.1:3142); nothing else is downloaded.
#   build-test-image.sh OUTPUT [PROBE_IP [PROBE_NAME]]
# The guest: loads the virtio modules, brings up eth0 with DHCP (udhcpc, honouring the MTU and DNS options), reads
# the instance id from the metadata service, serves HTTP on port 80, pings PROBE_IP and resolves PROBE_NAME
# (busybox's own DNS client, through the DHCP-given server) every 10 s. It prints machine-readable lines to the
# serial console (openstack console log show):
#   RIG-IMAGE: booted <kernel>          RIG-IMAGE: dhcp ok <ip>/<prefix> gw <router> mtu <mtu> | dhcp fail
#   RIG-IMAGE: metadata ok <instance-id> | metadata fail
#   RIG-IMAGE: probe <ip> ok | probe <ip> fail   (first 30 attempts, then only when the result changes)
#   RIG-IMAGE: dns <name> ok <address> | dns <name> fail   (likewise)
set -euo pipefail
OUT=$(realpath -m "$1")
PROBE=${2:-198.51.100.10}
PROBE_NAME=${3:-probe.rig.internal}
PROXY=${RIG_APT_PROXY:-http://127.0.0.1:3142}
WORK=$(dirname "$OUT")/test-image-work
rm -rf "$WORK"
mkdir -p "$WORK/debs" "$WORK/x" "$WORK/initrd"
cd "$WORK/debs"

kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'; }
kernel_pkg=$(kernel_pkg)
if [[ -z "$kernel_pkg" ]]; then apt-get -o DPkg::Lock::Timeout=600 update -qq; kernel_pkg=$(kernel_pkg); fi
[[ -n "$kernel_pkg" ]] || { echo "build-test-image: no linux-image package found (apt-get update?)" >&2; exit 1; }
apt-get -q -o APT::Sandbox::User=root -o Acquire::http::Proxy="$PROXY" download "$kernel_pkg" busybox-static >/dev/null
for deb in ./*.deb; do dpkg-deb -x "$deb" "$WORK/x"; done
kver=${kernel_pkg#linux-image-}
vmlinuz=$WORK/x/boot/vmlinuz-$kver
moddir=$WORK/x/lib/modules/$kver
depmod -b "$WORK/x" "$kver"  # modules.dep is made at install time, not shipped

# Modules the guest needs (virtio NIC and PCI transport, e1000 as a fallback), with their dependencies first.
want=(virtio_net virtio_pci e1000 virtio_blk)
declare -A seen=()
order=()
add_module() {
  local name=$1 path deps dep
  path=$(awk -F: -v m="$name" '{ n=$1; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n); gsub(/-/, "_", n);
                                 if (n == m) { print $1; exit } }' "$moddir/modules.dep")
  [[ -n "$path" && -z "${seen[$path]:-}" ]] || return 0
  seen[$path]=1
  deps=$(awk -F: -v p="$path" '$1 == p { print $2 }' "$moddir/modules.dep")
  for dep in $deps; do
    dep=${dep##*/}; dep=${dep%%.ko*}; add_module "${dep//-/_}"
  done
  order+=("$path")
}
for m in "${want[@]}"; do add_module "$m"; done

R=$WORK/initrd
mkdir -p "$R"/{bin,sbin,etc,proc,sys,dev,tmp,run,www,lib/modules,usr/bin,usr/sbin,usr/share/udhcpc}
cp "$WORK/x/bin/busybox" "$R/bin/busybox"
for m in "${order[@]}"; do
  base=${m##*/}
  case "$base" in
    *.ko.xz) xz -dc "$moddir/$m" > "$R/lib/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$moddir/$m" > "$R/lib/modules/${base%.zst}"; base=${base%.zst} ;;
    *) cp "$moddir/$m" "$R/lib/modules/$base" ;;
  esac
  echo "$base" >> "$R/etc/modules.order"
done
touch "$R/etc/modules.order"
echo "rig-test-image-ok" > "$R/www/index.html"

cat > "$R/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/busybox sh
# udhcpc hands the lease to this script; init applies it (keeps the work in one process we can see)
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
{ echo "ip=$ip"; echo "subnet=${subnet:-255.255.255.0}"; echo "mask=${mask:-24}"; echo "router=${router%% *}"; echo "mtu=$mtu"; echo "dns=${dns%% *}"; } > /run/lease
exit 0
EOF
chmod +x "$R/usr/share/udhcpc/default.script"

cat > "$R/init" <<EOF
#!/bin/busybox sh
PROBE=$PROBE
PROBE_NAME=$PROBE_NAME
EOF
cat >> "$R/init" <<'EOF'
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for arg in $(cat /proc/cmdline); do
  case "$arg" in rig.probe=*) PROBE=${arg#rig.probe=} ;; rig.probe_name=*) PROBE_NAME=${arg#rig.probe_name=} ;; esac
done
echo "RIG-IMAGE: booted $(uname -r)"
while read -r m; do insmod "/lib/modules/$m" || echo "RIG-IMAGE: insmod $m failed"; done < /etc/modules.order
hostname rig-test-image
ifconfig lo 127.0.0.1 up
ifconfig eth0 up 2>/dev/null || echo "RIG-IMAGE: no eth0"
if udhcpc -i eth0 -s /usr/share/udhcpc/default.script -O mtu -t 15 -T 2 -n -q 2>&1 && [ -f /run/lease ]; then
  . /run/lease
  ifconfig eth0 "$ip" netmask "$subnet" up
  if [ -n "$mtu" ]; then ifconfig eth0 mtu "$mtu"; fi
  if [ -n "$router" ]; then route add default gw "$router" dev eth0; fi
  if [ -n "$dns" ]; then echo "nameserver $dns" > /etc/resolv.conf; fi
  echo "RIG-IMAGE: dhcp ok $ip/$mask gw ${router:-none} mtu ${mtu:-default} dns ${dns:-none}"
else
  echo "RIG-IMAGE: dhcp fail"
fi
# (busybox-static's wget crashes resolving in this initramfs; nc with a literal address does not resolve)
id=$(printf 'GET /latest/meta-data/instance-id HTTP/1.0\r\n\r\n' | nc -w 5 169.254.169.254 80 2>/dev/null | tail -n 1)
case "$id" in i-*) echo "RIG-IMAGE: metadata ok $id" ;; *) echo "RIG-IMAGE: metadata fail" ;; esac
httpd -p 80 -h /www
n=0; last=""; last_dns=""
while :; do
  if ping -c 1 -W 2 "$PROBE" >/dev/null 2>&1; then res=ok; else res=fail; fi
  # busybox nslookup is its own DNS client (glibc's resolver does not work in a static binary here)
  addr=$(nslookup -type=a "$PROBE_NAME" 2>/dev/null | awk '/^Name:/ { named = 1 } named && /^Address/ { print $NF; exit }')
  if [ -n "$addr" ]; then dns="ok $addr"; else dns=fail; fi
  n=$((n + 1))
  if [ "$n" -le 30 ] || [ "$res" != "$last" ]; then echo "RIG-IMAGE: probe $PROBE $res"; fi
  if [ "$n" -le 30 ] || [ "$dns" != "$last_dns" ]; then echo "RIG-IMAGE: dns $PROBE_NAME $dns"; fi
  last=$res; last_dns=$dns
  sleep 10
done
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -9) > "$WORK/initrd.gz"

# A FAT file system over the whole disk with syslinux in its boot sector (SeaBIOS boots it like an MBR).
raw=$WORK/disk.raw
size_kib=$(( ($(stat -c %s "$vmlinuz") + $(stat -c %s "$WORK/initrd.gz")) / 1024 + 4096 ))
mkfs.vfat -n RIGIMAGE -C "$raw" "$size_kib" >/dev/null
cat > "$WORK/syslinux.cfg" <<EOF
DEFAULT rig
PROMPT 0
TIMEOUT 1
SERIAL 0 115200
LABEL rig
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=tty0 console=ttyS0,115200 loglevel=3 rig.probe=$PROBE rig.probe_name=$PROBE_NAME
EOF
mcopy -i "$raw" "$vmlinuz" ::vmlinuz
mcopy -i "$raw" "$WORK/initrd.gz" ::initrd.gz
mcopy -i "$raw" "$WORK/syslinux.cfg" ::syslinux.cfg
syslinux --install "$raw"
qemu-img convert -q -c -f raw -O qcow2 "$raw" "$OUT.tmp"
cat "$OUT.tmp" > "$OUT"  # in place: running nodes bind-mount this file (a rename would hide the new one)
rm -f "$OUT.tmp"
echo "build-test-image: $OUT ($(du -h "$OUT" | cut -f1), kernel $kver, modules: ${order[*]##*/})"
rm -rf "$WORK"

#!/usr/bin/env bash
# Boot the test image once under qemu (software emulation) on a tap in a private namespace that serves DHCP
# (busybox udhcpd) and holds the probe address; pass when the console shows DHCP and the probe answering.
#   selftest-image.sh IMAGE        (needs qemu-system-x86 and busybox-static on the host; ~1 min)
set -euo pipefail
IMAGE=$(realpath "$1")
NS=rigt-qemu
WORK=$(mktemp -d)
cleanup() {
  if [[ -n "${qpid:-}" ]]; then kill "$qpid" 2>/dev/null || true; fi
  if [[ -n "${dpid:-}" ]]; then kill "$dpid" 2>/dev/null || true; fi
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev tap0 mode tap
ip -n "$NS" addr add 10.253.0.1/24 dev tap0
ip -n "$NS" addr add 198.51.100.10/32 dev tap0
ip -n "$NS" link set tap0 up
cat > "$WORK/udhcpd.conf" <<EOF
start 10.253.0.10
end 10.253.0.20
interface tap0
lease_file $WORK/leases
option subnet 255.255.255.0
option router 10.253.0.1
option mtu 1450
EOF
touch "$WORK/leases"
ip netns exec "$NS" busybox udhcpd -f "$WORK/udhcpd.conf" >/dev/null 2>&1 &
dpid=$!
ip netns exec "$NS" qemu-system-x86_64 -m 256 -nographic -no-reboot -snapshot \
  -drive "file=$IMAGE,if=virtio,format=qcow2" \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0 \
  > "$WORK/console.log" 2>&1 &
qpid=$!
for _ in $(seq 1 "${SELFTEST_SECONDS:-180}"); do
  if grep -q "RIG-IMAGE: probe 198.51.100.10 ok" "$WORK/console.log"; then break; fi
  sleep 1
done
grep -a "RIG-IMAGE" "$WORK/console.log" || true
if grep -q "RIG-IMAGE: probe 198.51.100.10 ok" "$WORK/console.log"; then
  echo "selftest-image: ok"
else
  grep -av "RIG-IMAGE: probe" "$WORK/console.log" | tail -30
  echo "selftest-image: FAILED" >&2
  exit 1
fi

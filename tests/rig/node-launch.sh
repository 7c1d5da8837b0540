#!/usr/bin/env bash
# Boot one rig node with systemd-nspawn and keep it booted across reboots from inside.
#   node-launch.sh LAUNCH_FILE
# LAUNCH_FILE (written by tests/rig/nodes.py) sets: NODE, ROOTFS, LEADER_FILE, CGROUP (path under each hierarchy),
# IFACES (array of "host_if container_if mac bridge"), NSPAWN_ARGS (array of extra systemd-nspawn options).
# Each boot: fresh veth pairs (a container's end dies with its network namespace), nspawn with a private
# network, then the container ends are moved in; the node names them as EC2's kernel and udev would
# (rig-ifnames.service). The hostname is the node's own (/etc/hostname: cloud-init's, then userdata's).
# A reboot inside the container makes nspawn exit 133: boot again. Any other exit ends the launcher.
set -euo pipefail
LAUNCH_FILE=$1
NODE="" ROOTFS="" LEADER_FILE="" CGROUP=""
IFACES=() NSPAWN_ARGS=()
# shellcheck source=/dev/null
. "$LAUNCH_FILE"

for h in systemd unified memory; do
  if [[ -d "/sys/fs/cgroup/$h" ]]; then
    mkdir -p "/sys/fs/cgroup/$h/$CGROUP"
    echo $$ > "/sys/fs/cgroup/$h/$CGROUP/cgroup.procs"
  fi
done

nspawn_pid=""
stop() {
  # SIGTERM to nspawn makes it shut the container down cleanly (SIGRTMIN+3 to its init).
  if [[ -n "$nspawn_pid" ]]; then kill -TERM "$nspawn_pid" 2>/dev/null || true; fi
  exit_requested=1
}
exit_requested=0
trap stop TERM INT

find_leader() {  # the container's PID 1: a child of nspawn whose NSpid ends in 1
  local parent=$1 child children
  children=$(cat "/proc/$parent/task/"*/children 2>/dev/null) || return 1
  for child in $children; do
    if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$child/status" 2>/dev/null; then
      echo "$child"
      return 0
    fi
  done
  return 1
}

while :; do
  for spec in "${IFACES[@]}"; do
    read -r hif cif mac bridge <<< "$spec"
    ip link del "$hif" 2>/dev/null || true
    ip link add "$hif" type veth peer name "$cif"
    ip link set "$cif" address "$mac"
    ip link set "$hif" mtu 9001
    # An ENA NIC hands the instance frames with finished checksums. A veth passes on what the host or another node
    # sent with its checksum still to be filled in (CHECKSUM_PARTIAL); Open vSwitch's userspace datapath (Debian 13
    # nodes on a kernel without openvswitch) forwards that unfinished and the receiving stack drops it (TCP from
    # the host's apt cache stayed in SYN-SENT). Without tx checksumming here the kernel finishes it on the way in.
    ethtool -K "$hif" tx off >/dev/null
    ip link set "$cif" mtu 9001
    echo 1 > "/proc/sys/net/ipv6/conf/$hif/disable_ipv6"
    ip link set "$hif" master "$bridge" up
  done
  rm -f "$LEADER_FILE"
  echo "launcher: booting $NODE"
  SYSTEMD_SECCOMP=0 systemd-nspawn --boot --register=no --keep-unit --directory="$ROOTFS" --machine="$NODE" \
    --private-network --capability=all --resolv-conf=off --timezone=off \
    --link-journal=no --console=read-only "${NSPAWN_ARGS[@]}" < /dev/null &
  nspawn_pid=$!
  leader=""
  for _ in $(seq 1 300); do
    if leader=$(find_leader "$nspawn_pid"); then break; fi
    if ! kill -0 "$nspawn_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [[ -n "$leader" ]]; then
    for spec in "${IFACES[@]}"; do
      read -r hif cif mac bridge <<< "$spec"
      ip link set "$cif" netns "$leader"
    done
    echo "$leader" > "$LEADER_FILE"
    echo "launcher: $NODE leader pid $leader"
  fi
  rc=0
  wait "$nspawn_pid" || rc=$?
  # wait returns early when a trapped signal arrives: wait for nspawn itself to finish
  while kill -0 "$nspawn_pid" 2>/dev/null; do wait "$nspawn_pid" || rc=$?; done
  nspawn_pid=""
  rm -f "$LEADER_FILE"
  for spec in "${IFACES[@]}"; do
    read -r hif _ <<< "$spec"
    ip link del "$hif" 2>/dev/null || true
  done
  echo "launcher: $NODE nspawn exited $rc"
  if [[ $rc -ne 133 || $exit_requested -eq 1 ]]; then exit "$rc"; fi
  sleep 1
done

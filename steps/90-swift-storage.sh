#!/usr/bin/env bash
# step: swift-storage
# roles: object
# after: base
# timeout: 1200
# uses: swift
# inputs: node facts (DATA_DISKS, MGMT_IP, MGMT_CIDR), cluster facts, secrets SWIFT_HASH_PATH_PREFIX SWIFT_HASH_PATH_SUFFIX
# guarantees: each data disk XFS-formatted (only if blank) and mounted at /srv/node/dN (fstab), rsync serving account/container/object on MGMT_IP to MGMT_CIDR only, the three servers configured on MGMT_IP (started by swift-rings); artifact swift-devices-<MGMT_IP> lists the devices
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role object
require_vars DATA_DISKS MGMT_CIDR

apt_install xfsprogs rsync swift swift-account swift-container swift-object
swift_conf_common

# --- disks: /srv/node/d1, d2, ... in DATA_DISKS order (ring device names do not depend on kernel names).
read -r -a disks <<<"$DATA_DISKS"
names=()
for i in "${!disks[@]}"; do
    name="d$((i + 1))"
    mp="/srv/node/$name"
    names+=("$name")
    mkdir -p "$mp"
    if ! mountpoint -q "$mp"; then
        dev=$(readlink -f "${disks[$i]}")
        [[ -b "$dev" ]] || die "data disk ${disks[$i]} is not a block device on this node (DATA_DISKS=$DATA_DISKS)"
        fstype=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
        if [[ -z "$fstype" ]]; then
            mkfs.xfs -q -L "swift-$name" "$dev" || die "mkfs.xfs $dev failed"
            log "$dev formatted (XFS)"
        elif [[ "$fstype" != xfs ]]; then
            die "$dev holds $fstype, not XFS: refusing to format it (wipe it with wipefs if it is really a Swift disk)"
        fi
        uuid=$(blkid -p -o value -s UUID "$dev")
        if ! grep -q " $mp " /etc/fstab; then
            printf 'UUID=%s %s xfs noatime,nofail 0 2\n' "$uuid" "$mp" >>/etc/fstab
            log "fstab: $mp"
        fi
        mount "$mp" || die "cannot mount $dev on $mp"
        log "$dev mounted on $mp"
    fi
    [[ "$(stat -c %U "$mp")" == swift ]] || chown swift:swift "$mp"
done

# --- rsync (replication between object nodes): its modules write anywhere under /srv/node without a password, so
# it listens on the management address and serves the management subnet only, where the object nodes are.
write_file /etc/rsyncd.conf 0644 <<EOF2
uid = swift
gid = swift
log file = /var/log/rsyncd.log
pid file = /var/run/rsyncd.pid
address = $MGMT_IP
hosts allow = $MGMT_CIDR

[account]
max connections = 2
path = /srv/node/
read only = False
lock file = /var/lock/account.lock

[container]
max connections = 2
path = /srv/node/
read only = False
lock file = /var/lock/container.lock

[object]
max connections = 2
path = /srv/node/
read only = False
lock file = /var/lock/object.lock
EOF2
[[ ! -e /etc/default/rsync ]] || set_line /etc/default/rsync '^RSYNC_ENABLE=' RSYNC_ENABLE=true
svc_apply "/etc/rsyncd.conf /etc/default/rsync" rsync

# --- servers (started by the swift-rings step once the rings are here)
for entry in "${SWIFT_RINGS[@]}"; do
    server=${entry%%:*}
    ini_merge "/etc/swift/$server-server.conf" root:swift <<EOF2
[DEFAULT]
bind_ip = $MGMT_IP
bind_port = ${entry##*:}
user = swift
swift_dir = /etc/swift
devices = /srv/node
mount_check = true
workers = 1
[filter:recon]
use = egg:swift#recon
recon_cache_path = /var/cache/swift
EOF2
done

devfile=$(mktemp)
printf '%s\n' "${names[@]}" >"$devfile"
artifact_put "swift-devices-$MGMT_IP" "$devfile"
rm -f "$devfile"
log "swift storage ready on ${names[*]}"

#!/usr/bin/env bash
# step: wipe-data-disks
# roles: block, object
# after: -
# timeout: 600
# inputs: node facts (DATA_DISKS)
# guarantees: every data disk is unmounted and blank (no filesystem, no LVM), so the install's cinder-volume and
#   swift-storage steps initialize it as on the first day. Runs only in the nightly rebuild, after the root volume
#   was restored (there the disks are merely unmounted already); safe to re-run.
set -euo pipefail
# shellcheck source=../lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
step_begin
require_role block object
require_vars DATA_DISKS

read -r -a disks <<<"$DATA_DISKS"
# Everything that may hold the disks: Debian runs each Swift daemon (auditors, replicators, updaters) as a unit.
systemctl stop 'swift*' cinder-volume tgt rsync 2>/dev/null || true
if command -v vgs >/dev/null && vgs cinder-volumes >/dev/null 2>&1; then
    vgremove -ff cinder-volumes || die "cannot remove volume group cinder-volumes: see 'vgs' and 'lvs' on this node"
    log "volume group cinder-volumes removed"
fi
sed -i '\| /srv/node/|d' /etc/fstab
for entry in "${disks[@]}"; do
    disk=$(readlink -f "$entry")
    [[ -b "$disk" ]] || die "data disk $entry is not a block device on this node (DATA_DISKS=$DATA_DISKS)"
    while read -r target; do
        [[ -n "$target" ]] || continue
        if ! umount "$target"; then
            warn "$target is busy: stopping the processes that still use it"
            if command -v fuser >/dev/null; then fuser -km "$target" || true; sleep 1; fi
            umount "$target" || die "cannot unmount $target (in use: see 'fuser -vm $target' or 'lsof $target')"
        fi
        log "unmounted $target"
    done < <(findmnt -rno TARGET -S "$disk" || true)
    if command -v pvs >/dev/null && pvs "$disk" >/dev/null 2>&1; then
        pvremove -ff -y "$disk" >/dev/null || die "cannot remove the LVM label of $disk"
    fi
    if [[ -n "$(wipefs -n "$disk" 2>/dev/null)" ]]; then
        wipefs -a -q "$disk" || die "wipefs $disk failed"
        log "$disk wiped"
    else
        log "$disk already blank"
    fi
done
log "data disks blank: ${disks[*]}"

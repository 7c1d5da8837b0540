#!/usr/bin/env bash
# step: cinder-volume
# roles: block
# after: cinder-controller
# timeout: 1200
# uses: service, cinder
# inputs: node facts (DATA_DISKS: the first device becomes the volume group), cluster facts, secrets CINDER_DBPASS CINDER_PASS NOVA_PASS RABBIT_PASS MEMCACHE_SECRET_KEY
# guarantees: LVM volume group cinder-volumes (thick volumes, lvm_type default) on the first data disk, an LVM filter accepting only that disk, tgt as the iSCSI target, cinder-volume (backend lvm) running and reported up
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role block
require_vars DATA_DISKS
load_secrets CINDER_DBPASS CINDER_PASS NOVA_PASS RABBIT_PASS

apt_install lvm2 tgt cinder-volume

read -r -a disks <<<"$DATA_DISKS"
# DATA_DISKS names the disk by a stable path (/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_<volume> on EC2):
# NVMe kernel names are handed out in probe order and change between boots, so the filter below names that path
# and never the kernel name it points to today.
disk=${disks[0]}
[[ -b "$disk" ]] || die "data disk $disk is not a block device on this node (DATA_DISKS=$DATA_DISKS)"
vg=cinder-volumes

# LVM scans only the Cinder disk: instances' volumes hold LVM signatures of their own, which the host must not
# activate (the install guide's filter). The root disk is not on LVM on the Debian AMIs. LVM matches a filter
# against every name of a device (its /dev/disk/by-id links included), so the stable path accepts it.
filter="filter = [ \"a|^$disk\$|\", \"r|.*|\" ]"
if ! grep -qF -- "$filter" /etc/lvm/lvm.conf; then
    tmp=$(mktemp)
    OSA_FILTER="$filter # openstack-aws filter" awk '/# openstack-aws filter$/ {next}
        !done && /^devices \{/ {print; print "\t" ENVIRON["OSA_FILTER"]; done = 1; next} {print}' \
        /etc/lvm/lvm.conf >"$tmp"
    cat "$tmp" >/etc/lvm/lvm.conf
    rm -f "$tmp"
    mark_changed /etc/lvm/lvm.conf
    log "LVM filter: only $disk"
fi
grep -qF -- "$filter" /etc/lvm/lvm.conf || die "could not set the LVM filter in /etc/lvm/lvm.conf"

if ! vgs "$vg" >/dev/null 2>&1; then
    if pvs "$disk" >/dev/null 2>&1; then
        log "$disk is already a physical volume"
    else
        if [[ -n "$(blkid -p -o value -s TYPE "$disk" 2>/dev/null)" ]]; then
            die "$disk holds a $(blkid -p -o value -s TYPE "$disk") signature: refusing to overwrite it (wipe it with wipefs if it is really the Cinder disk)"
        fi
        pvcreate -q "$disk" || die "pvcreate $disk failed"
    fi
    vgcreate -q "$vg" "$disk" || die "vgcreate $vg $disk failed"
    log "volume group $vg created on $disk"
fi
vgs "$vg" | sed 's/^/  /'

cinder_conf_common
ini_merge /etc/cinder/cinder.conf <<EOF2
[DEFAULT]
enabled_backends = lvm
[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = $vg
target_protocol = iscsi
target_helper = tgtadm
volume_backend_name = lvm
lvm_type = default
EOF2
# tgt reads the targets cinder writes under /var/lib/cinder/volumes (the package's cinder_tgt.conf).
grep -qs '^include /var/lib/cinder/volumes/' /etc/tgt/conf.d/cinder_tgt.conf ||
    write_file /etc/tgt/conf.d/cinder_tgt.conf 0644 <<<"include /var/lib/cinder/volumes/*"

svc_apply "/etc/tgt/conf.d/cinder_tgt.conf packages" tgt
svc_apply "/etc/cinder/cinder.conf /etc/lvm/lvm.conf packages" cinder-volume
svc_check tgt cinder-volume
log "cinder-volume ready on $vg ($disk); the verify step checks it reports up"

#!/usr/bin/env bash
# step: nova-compute
# roles: compute
# after: datapath
# timeout: 1800
# uses: service, nova
# inputs: node facts (optional VIRT_TYPE=kvm|qemu overrides detection), cluster facts (ELASTIC_IP), secrets NOVA_PASS PLACEMENT_PASS NEUTRON_PASS RABBIT_PASS MEMCACHE_SECRET_KEY
# guarantees: libvirt and nova-compute running with virt_type kvm when /dev/kvm really runs a guest, else qemu; instances' VNC servers on MGMT_IP only, their console through http://ELASTIC_IP:6080
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role compute
require_vars ELASTIC_IP
load_secrets NOVA_PASS PLACEMENT_PASS NEUTRON_PASS RABBIT_PASS

apt_install nova-compute nova-compute-kvm qemu-system-x86 libvirt-daemon-system

# kvm_usable: the CPU advertises hardware virtualisation (the install guide's test), /dev/kvm opens read-write,
# and KVM really runs a guest: a 512-byte boot sector that writes to QEMU's isa-debug-exit port makes QEMU exit
# with status 99 only if the guest code ran. A /dev/kvm that exists but cannot run guests fails here.
kvm_usable() {
    grep -qE '(vmx|svm)' /proc/cpuinfo || return 1
    [[ -c /dev/kvm && -r /dev/kvm && -w /dev/kvm ]] || return 1
    local img rc=0
    img=$(mktemp)
    python3 -c 'import sys; c = bytes([0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]); sys.stdout.buffer.write(c + bytes(510 - len(c)) + b"\x55\xaa")' >"$img"
    timeout 30 qemu-system-x86_64 -accel kvm -cpu host -machine pc -m 16 -display none -nodefaults -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -drive "file=$img,format=raw,if=ide" >/dev/null 2>&1 || rc=$?
    rm -f "$img"
    ((rc == 99))
}

if [[ -n "${VIRT_TYPE:-}" ]]; then
    [[ "$VIRT_TYPE" == kvm || "$VIRT_TYPE" == qemu ]] || die "VIRT_TYPE in node.env must be kvm or qemu, not '$VIRT_TYPE'"
    virt_type=$VIRT_TYPE
    log "virt_type $virt_type (VIRT_TYPE in node.env)"
elif kvm_usable; then
    virt_type=kvm
    log "virt_type kvm: /dev/kvm runs guests"
else
    virt_type=qemu
    log "virt_type qemu: no usable KVM (no vmx/svm flag, no /dev/kvm, or it cannot run a guest)"
fi

# Instances' VNC servers listen on the management address (server_listen in nova_conf_common): only the
# controller's novncproxy connects to them, and on every address any traffic reaching this node could.
nova_conf_common
ini_merge /etc/nova/nova-compute.conf root:nova <<EOF2
[DEFAULT]
compute_driver = libvirt.LibvirtDriver
[libvirt]
virt_type = $virt_type
EOF2
if [[ "$(neutron_backend)" == openvswitch ]]; then
    # os-vif plugs ports into br-int over OVSDB as user nova: not through db.sock (root's only) but through the
    # loopback manager the openvswitch agent opens for itself (its own ovsdb_connection, also os-vif's default).
    ini_set /etc/nova/nova-compute.conf os_vif_ovs ovsdb_connection tcp:127.0.0.1:6640
fi

# nova-compute tells systemd it is ready only once it reached nova-conductor, which may come up much later on
# the controller: no start timeout, so systemd never kills it while it waits.
mkdir -p /etc/systemd/system/nova-compute.service.d
write_file /etc/systemd/system/nova-compute.service.d/openstack-aws.conf 0644 <<<$'[Service]\nTimeoutStartSec=infinity'
if changed /etc/systemd/system/nova-compute.service.d/openstack-aws.conf; then systemctl daemon-reload; fi

if in_container; then
    # A container's cgroup hierarchy is read-only: libvirt must not try to create cgroups for guests (the rig;
    # on EC2 libvirt keeps its defaults).
    set_line /etc/libvirt/qemu.conf '^#? *cgroup_controllers *=' 'cgroup_controllers = [ ]'
fi
svc_apply "/etc/libvirt/qemu.conf packages" libvirtd
OSA_NO_BLOCK=nova-compute svc_apply "/etc/nova/nova.conf /etc/nova/nova-compute.conf /etc/systemd/system/nova-compute.service.d/openstack-aws.conf packages" nova-compute
svc_check libvirtd nova-compute
log "nova-compute ready (virt_type $virt_type); the controller's nova-discover step maps it to cell1"

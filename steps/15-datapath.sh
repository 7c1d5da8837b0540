#!/usr/bin/env bash
# step: datapath
# roles: controller, compute
# after: base
# timeout: 900
# uses: ovs, ebtables
# inputs: node facts (MGMT_IF, MGMT_MAC, MGMT_IP, MGMT_CIDR, MGMT_GW); the node's release (/etc/os-release)
# guarantees: the layer 2 datapath under Neutron's agent. linuxbridge backend (Debian 12): ebtables with the among-delete wrapper as the ebtables alternative. openvswitch backend (Debian 13 on): ovs-vswitchd running with bridge br-ex (physnet provider), on the kernel datapath where the kernel has Open vSwitch, else on the userspace (netdev) one with MGMT_IF and the management address on bridge br-mgmt (userspace tunnels need it there; MGMT_IF's own receive path dropped) and tx checksumming off on instance ports (openstack-aws-ovs-checksums.service), persisting across reboots
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_vars MGMT_MAC MGMT_CIDR MGMT_GW

case "$(neutron_backend)" in
    linuxbridge)
        apt_install ebtables
        ebtables_among_delete_fix
        log "linuxbridge datapath ready (ebtables: $(readlink -f /etc/alternatives/ebtables))"
        exit 0
        ;;
    openvswitch) apt_install openvswitch-switch ethtool nftables ;;
esac
svc_apply "packages" openvswitch-switch
svc_check ovs-vswitchd ovsdb-server
datapath=$(ovs_datapath)
if [[ "$datapath" == netdev ]]; then
    warn "no openvswitch kernel module: ovs-vswitchd forwards in userspace (datapath netdev)"
    ovs_mgmt_underlay
    ovs_port_checksums
fi
ovs_bridge "$OVS_PROVIDER_BRIDGE" "$datapath"
ovs-vsctl show | sed 's/^/  /'
log "Open vSwitch ready ($datapath datapath)"

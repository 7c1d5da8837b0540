#!/usr/bin/env bash
# step: neutron-compute
# roles: compute
# after: datapath
# timeout: 1200
# uses: service, neutron
# inputs: node facts (MGMT_IP, PROVIDER_IF), cluster facts (CONTROLLER_IP, COMPUTE_IPS), secrets NEUTRON_PASS RABBIT_PASS MEMCACHE_SECRET_KEY
# guarantees: neutron-linuxbridge-agent (Debian 12) or neutron-openvswitch-agent (13: the backhaul is a port of br-ex) running (physnet provider on the provider backhaul osa-provider: VXLAN VNI 1001, UDP 4790, from MGMT_IP, flooding to every other node of CONTROLLER_IP and COMPUTE_IPS, rebuilt at every boot before the agent by openstack-aws-provider-backhaul.service; PROVIDER_IF is not Neutron's (released from a bridge an earlier install put it in); VXLAN local_ip MGMT_IP, iptables security groups)
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role compute
require_vars PROVIDER_IF
load_secrets NEUTRON_PASS RABBIT_PASS

read -r agent agent_ini < <(neutron_agent)
apt_install ipset
case "$(neutron_backend)" in
    linuxbridge) apt_install neutron-linuxbridge-agent ;;
    openvswitch) apt_install neutron-openvswitch-agent ;;
esac
neutron_conf_common
if [[ "$agent" == neutron-linuxbridge-agent ]]; then
    linuxbridge_conf physical_interface_mappings "$PROVIDER_BACKHAUL"
    provider_backhaul
else
    ovs_agent_conf "$(ovs_datapath_type)"
    provider_backhaul "" "$OVS_PROVIDER_BRIDGE"
fi
svc_apply "/etc/neutron/neutron.conf $agent_ini packages" "$agent"
svc_check "$agent"
log "$agent ready (the controller's verify step checks it reports alive)"

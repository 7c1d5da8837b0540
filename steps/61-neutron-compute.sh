#!/usr/bin/env bash
# step: neutron-compute
# roles: compute
# after: base
# timeout: 1200
# uses: service, neutron, ebtables
# inputs: node facts (MGMT_IP, PROVIDER_IF), cluster facts (CONTROLLER_IP, COMPUTE_IPS), secrets NEUTRON_PASS RABBIT_PASS MEMCACHE_SECRET_KEY
# guarantees: neutron-linuxbridge-agent running (physnet provider on the provider backhaul osa-provider: VXLAN VNI 1001, UDP 4790, from MGMT_IP, flooding to every other node of CONTROLLER_IP and COMPUTE_IPS, rebuilt at every boot before the agent by openstack-aws-provider-backhaul.service; PROVIDER_IF is not Neutron's (released from a bridge an earlier install put it in); VXLAN local_ip MGMT_IP, iptables security groups)
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role compute
require_vars PROVIDER_IF
load_secrets NEUTRON_PASS RABBIT_PASS

apt_install neutron-linuxbridge-agent ebtables ipset
ebtables_among_delete_fix
neutron_conf_common
linuxbridge_conf physical_interface_mappings "$PROVIDER_BACKHAUL"
provider_backhaul
svc_apply "/etc/neutron/neutron.conf /etc/neutron/plugins/ml2/linuxbridge_agent.ini packages" neutron-linuxbridge-agent
svc_check neutron-linuxbridge-agent
log "neutron linuxbridge agent ready (the controller's verify step checks it reports alive)"

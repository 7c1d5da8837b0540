#!/usr/bin/env bash
# step: neutron-compute
# roles: compute
# after: base
# timeout: 1200
# uses: service, neutron, ebtables
# inputs: node facts (MGMT_IP, PROVIDER_IF), cluster facts, secrets NEUTRON_PASS RABBIT_PASS MEMCACHE_SECRET_KEY
# guarantees: neutron-linuxbridge-agent running (physnet provider on PROVIDER_IF, VXLAN local_ip MGMT_IP, iptables security groups)
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
linuxbridge_conf
ip link set "$PROVIDER_IF" up
svc_apply "/etc/neutron/neutron.conf /etc/neutron/plugins/ml2/linuxbridge_agent.ini packages" neutron-linuxbridge-agent
svc_check neutron-linuxbridge-agent
log "neutron linuxbridge agent ready (the controller's verify step checks it reports alive)"

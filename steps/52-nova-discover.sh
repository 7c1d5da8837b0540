#!/usr/bin/env bash
# step: nova-discover
# roles: controller
# after: nova-controller, nova-compute
# timeout: 900
# inputs: node facts, cluster facts (COMPUTE_IPS), secrets ADMIN_PASS
# guarantees: every compute node's nova-compute is up and mapped to cell1; the hypervisor list holds all of them
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars COMPUTE_IPS
os_admin

read -r -a computes <<<"$COMPUTE_IPS"
want=${#computes[@]}
computes_up() {
    (($(openstack compute service list --service nova-compute -f value -c State | grep -c '^up$') >= want))
}
wait_for "$want nova-compute service(s) to report up (check nova-compute on the compute nodes and RabbitMQ)" 600 \
    computes_up
as_service nova nova-manage cell_v2 discover_hosts --verbose || die "nova-manage cell_v2 discover_hosts failed"
hypervisors() { (($(openstack hypervisor list -f value -c ID | wc -l) >= want)); }
wait_for "$want hypervisor(s) in the hypervisor list" 300 hypervisors
openstack hypervisor list | sed 's/^/  /'
log "compute hosts discovered"

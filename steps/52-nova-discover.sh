#!/usr/bin/env bash
# step: nova-discover
# roles: controller
# after: nova-controller, nova-compute
# timeout: 900
# inputs: node facts, cluster facts (COMPUTE_IPS), secrets ADMIN_PASS
# guarantees: every compute node's nova-compute (by hostname, from COMPUTE_IPS and /etc/hosts) is up and mapped to cell1 (nova-manage cell_v2 list_hosts); the hypervisor list holds all of them
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars COMPUTE_IPS
os_admin

# The compute nodes by name (nova's host is the node's hostname; /etc/hosts maps each management address to it):
# waiting for "N services up" could count a stale service and pass before this node's host is mapped.
read -r -a computes <<<"$COMPUTE_IPS"
names=()
for ip in "${computes[@]}"; do
    name=$(getent hosts "$ip" | awk '{print $2; exit}')
    [[ -n "$name" ]] || die "no name for compute node $ip in /etc/hosts (userdata writes it)"
    names+=("$name")
done

# missing_from LISTING: the expected hostnames not in LISTING (one name per line); none: success.
missing_from() {
    local n out=()
    for n in "${names[@]}"; do grep -qxF "$n" <<<"$1" || out+=("$n"); done
    printf '%s' "${out[*]}"
}
computes_up() {
    [[ -z "$(missing_from "$(openstack compute service list --service nova-compute -f value -c Host -c State |
        awk '$2 == "up" {print $1}')")" ]]
}
wait_for "nova-compute up on ${names[*]} (check nova-compute on those nodes and RabbitMQ)" 600 computes_up

# Map them to cell1: discover by service (each nova-compute service record), and wait until every expected host
# has its host mapping; discover_hosts alone returns success even when a host's compute node record is not there
# yet, so it is repeated until the mappings appear.
mapped_hosts() {
    as_service nova nova-manage cell_v2 list_hosts 2>/dev/null | awk -F'|' 'NF > 3 {gsub(/ /, "", $4); print $4}'
}
all_mapped() {
    [[ -z "$(missing_from "$(mapped_hosts)")" ]] && return 0
    as_service nova nova-manage cell_v2 discover_hosts --by-service >/dev/null 2>&1 || true
    as_service nova nova-manage cell_v2 discover_hosts >/dev/null 2>&1 || true
    [[ -z "$(missing_from "$(mapped_hosts)")" ]]
}
before=$(missing_from "$(mapped_hosts)")
wait_for "host mappings in cell1 for ${names[*]} (still missing: see 'nova-manage cell_v2 list_hosts')" 300 all_mapped
[[ -z "$before" ]] || { mark_changed "host-mappings:$before"; log "mapped to cell1: $before"; }
hypervisors() {
    [[ -z "$(missing_from "$(openstack hypervisor list -f value -c 'Hypervisor Hostname' | cut -d. -f1)")" ]]
}
wait_for "hypervisors ${names[*]} in the hypervisor list" 300 hypervisors
openstack hypervisor list | sed 's/^/  /'
log "compute hosts discovered and mapped: ${names[*]}"

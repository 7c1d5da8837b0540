#!/usr/bin/env bash
# step: nova-controller
# roles: controller
# after: placement, glance
# timeout: 1800
# uses: service, nova
# inputs: node facts, cluster facts (ELASTIC_IP), secrets ADMIN_PASS NOVA_DBPASS NOVA_PASS PLACEMENT_PASS NEUTRON_PASS RABBIT_PASS METADATA_SECRET MEMCACHE_SECRET_KEY
# guarantees: nova-api (:8774), nova-api-metadata (:8775), nova-scheduler, nova-conductor, nova-novncproxy (:6080, URL https://ELASTIC_IP:6080), nova-api, nova-api-metadata and nova-novncproxy on MGMT_IP only; cells cell0 and cell1 (their stored URLs hold the secret's NOVA_DBPASS and RABBIT_PASS); user nova, service compute, public endpoint on ELASTIC_IP, internal and admin on CONTROLLER_IP
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
load_secrets NOVA_DBPASS NOVA_PASS PLACEMENT_PASS NEUTRON_PASS RABBIT_PASS METADATA_SECRET

for db in nova_api nova nova_cell0; do db_ensure "$db" nova NOVA_DBPASS; done
os_admin
os_register nova compute "OpenStack Compute" NOVA_PASS :8774/v2.1

apt_install nova-api nova-conductor nova-scheduler nova-consoleproxy
conf=/etc/nova/nova.conf
nova_conf_common
# novncproxy_host: the public-tls step's proxy has PUBLIC_IP:6080 (users' browsers open novncproxy_base_url there).
ini_merge "$conf" <<EOF2
[api_database]
connection = $(db_url nova "$NOVA_DBPASS" nova_api)
[database]
connection = $(db_url nova "$NOVA_DBPASS" nova)
[vnc]
novncproxy_host = $MGMT_IP
[neutron]
service_metadata_proxy = true
metadata_proxy_shared_secret = $METADATA_SECRET
[scheduler]
discover_hosts_in_cells_interval = 300
workers = 1
[conductor]
workers = 1
[DEFAULT]
metadata_workers = 1
osapi_compute_workers = 1
EOF2
uwsgi_processes /etc/nova/nova-api-uwsgi.ini 2
# Debian's console proxy package starts the proxy named here (its default is spicehtml5).
set_line /etc/default/nova-consoleproxy '^NOVA_CONSOLE_PROXY_TYPE=' NOVA_CONSOLE_PROXY_TYPE=novnc
uwsgi_processes /etc/nova/nova-api-metadata-uwsgi.ini 1
ini_behind_proxy "$conf"
uwsgi_on_mgmt nova-api
uwsgi_on_mgmt nova-api-metadata # neutron's metadata agent calls it on CONTROLLER_IP; nothing outside does

as_service nova nova-manage api_db sync || die "nova-manage api_db sync failed: see /var/log/nova"
if ! as_service nova nova-manage cell_v2 list_cells 2>/dev/null | grep ' cell0 ' >/dev/null; then
    as_service nova nova-manage cell_v2 map_cell0 || die "nova-manage cell_v2 map_cell0 failed"
fi
if ! as_service nova nova-manage cell_v2 list_cells 2>/dev/null | grep ' cell1 ' >/dev/null; then
    as_service nova nova-manage cell_v2 create_cell --name=cell1 --verbose || die "nova-manage cell_v2 create_cell failed"
fi
# cell_mappings (nova_api) keep each cell's database and RabbitMQ URLs, passwords included: after NOVA_DBPASS or
# RABBIT_PASS changed they are set again, before db sync (which reaches cell0 through its mapping).
# cell_ensure NAME TRANSPORT_URL DATABASE_URL: update_cell without URLs takes nova.conf's, and the environment
# overrides those (oslo.config's OS_<GROUP>__<OPTION>): no password on a command line or in the log.
cell_ensure() {
    local uuid have
    # list_cells --verbose rows: | Name | UUID | Transport URL | Database Connection | Disabled |
    read -r uuid have < <(awk -F'|' -v n="$1" '{gsub(/ /, "")} $2 == n {print $3, $4, $5}' <<<"$cells") ||
        die "nova-manage cell_v2 list_cells shows no $1"
    [[ "$have" != "$2 $3" ]] || return 0
    # cell0's none:/// holds no secret and goes on the command line: as nova-manage's own transport it would not load.
    if [[ "$2" == none:* ]]; then
        OS_DATABASE__CONNECTION=$3 as_service nova nova-manage cell_v2 update_cell --cell_uuid "$uuid" \
            --transport-url "$2" >/dev/null || die "nova-manage cell_v2 update_cell of $1 failed"
    else
        OS_DEFAULT__TRANSPORT_URL=$2 OS_DATABASE__CONNECTION=$3 as_service nova nova-manage cell_v2 update_cell \
            --cell_uuid "$uuid" >/dev/null || die "nova-manage cell_v2 update_cell of $1 failed"
    fi
    mark_changed "cell:$1"
    log "$1: database and transport URLs set again (NOVA_DBPASS or RABBIT_PASS changed)"
}
cells=$(as_service nova nova-manage cell_v2 list_cells --verbose 2>/dev/null) ||
    die "nova-manage cell_v2 list_cells failed"
cell_ensure cell0 none:/// "$(db_url nova "$NOVA_DBPASS" nova_cell0)"
cell_ensure cell1 "$(rabbit_url)" "$(db_url nova "$NOVA_DBPASS" nova)"
as_service nova nova-manage db sync || die "nova-manage db sync failed: see /var/log/nova"
as_service nova nova-manage cell_v2 list_cells | sed 's/^/  /'

services=(nova-api nova-api-metadata nova-scheduler nova-conductor nova-novncproxy)
# Restarted after a cell's URLs changed too: the services cache the cell mappings.
svc_apply "$conf /etc/nova/nova-api-uwsgi.ini /etc/nova/nova-api-metadata-uwsgi.ini /etc/default/nova-consoleproxy \
    /etc/default/nova-api /etc/default/nova-api-metadata packages cell:cell0 cell:cell1" "${services[@]}"
wait_http "http://$CONTROLLER_IP:8774" 120
wait_port "$CONTROLLER_IP" 8775 60
wait_port "$CONTROLLER_IP" 6080 60
svc_check "${services[@]}"
wait_for "nova-scheduler and nova-conductor to report up" 120 \
    bash -c '[[ $(openstack compute service list -f value -c Binary -c State | grep -cE "^nova-(scheduler|conductor) up$") -ge 2 ]]'
log "nova controller ready"

#!/usr/bin/env bash
# step: placement
# roles: controller
# after: keystone
# timeout: 1200
# uses: service
# inputs: node facts, cluster facts, secrets ADMIN_PASS PLACEMENT_DBPASS PLACEMENT_PASS MEMCACHE_SECRET_KEY
# guarantees: placement-api on MGMT_IP:8778 only and the CLI's placement commands (osc-placement); user placement, service placement, public endpoint on ELASTIC_IP, internal and admin on CONTROLLER_IP
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
load_secrets PLACEMENT_DBPASS PLACEMENT_PASS

db_ensure placement placement PLACEMENT_DBPASS
os_admin
os_register placement placement "Placement API" PLACEMENT_PASS :8778

# python3-osc-placement: the install guide's `openstack resource class list` (the CLI's placement plugin)
apt_install placement-api python3-osc-placement
conf=/etc/placement/placement.conf
ini_merge "$conf" root:placement <<EOF2
[placement_database]
connection = $(db_url placement "$PLACEMENT_DBPASS" placement)
[api]
auth_strategy = keystone
EOF2
ini_authtoken "$conf" placement "$PLACEMENT_PASS"
uwsgi_processes /etc/placement/placement-api-uwsgi.ini 2
ini_behind_proxy "$conf"
uwsgi_on_mgmt placement-api

as_service placement placement-manage db sync >/dev/null || die "placement-manage db sync failed: see /var/log/placement"
svc_apply "$conf /etc/placement/placement-api-uwsgi.ini /etc/default/placement-api packages" placement-api
wait_http "http://$CONTROLLER_IP:8778" 120
placement-status upgrade check >/dev/null || warn "placement-status upgrade check reports a problem"
log "placement ready"

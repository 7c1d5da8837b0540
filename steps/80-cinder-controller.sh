#!/usr/bin/env bash
# step: cinder-controller
# roles: controller
# after: keystone
# timeout: 1200
# uses: service, cinder
# inputs: node facts, cluster facts, secrets ADMIN_PASS CINDER_DBPASS CINDER_PASS NOVA_PASS RABBIT_PASS MEMCACHE_SECRET_KEY
# guarantees: cinder-api (MGMT_IP:8776 only) and cinder-scheduler; user cinder, service cinderv3 (volumev3), public endpoint on ELASTIC_IP, internal and admin on CONTROLLER_IP; nova-api knows the region for cinder
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
load_secrets CINDER_DBPASS CINDER_PASS NOVA_PASS RABBIT_PASS

db_ensure cinder cinder CINDER_DBPASS
os_admin
os_register cinder volumev3 "OpenStack Block Storage" CINDER_PASS ':8776/v3/%(project_id)s' cinderv3

apt_install cinder-api cinder-scheduler
cinder_conf_common
uwsgi_processes /etc/cinder/cinder-api-uwsgi.ini 2
ini_behind_proxy /etc/cinder/cinder.conf
uwsgi_on_mgmt cinder-api
as_service cinder cinder-manage db sync >/dev/null || die "cinder-manage db sync failed: see /var/log/cinder"

svc_apply "/etc/cinder/cinder.conf /etc/cinder/cinder-api-uwsgi.ini /etc/default/cinder-api packages" cinder-api \
    cinder-scheduler
wait_http "http://$CONTROLLER_IP:8776" 120
svc_check cinder-api cinder-scheduler
wait_for "cinder-scheduler to report up" 120 \
    bash -c 'openstack volume service list --service cinder-scheduler -f value -c State | grep -x up >/dev/null'
log "cinder controller ready"

#!/usr/bin/env bash
# step: glance
# roles: controller
# after: keystone
# timeout: 1200
# uses: service
# inputs: node facts, cluster facts, secrets ADMIN_PASS GLANCE_DBPASS GLANCE_PASS MEMCACHE_SECRET_KEY
# guarantees: glance-api on MGMT_IP:9292 only with the file store in /var/lib/glance/images; user glance, service image, public endpoint on ELASTIC_IP, internal and admin on CONTROLLER_IP
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
load_secrets GLANCE_DBPASS GLANCE_PASS

db_ensure glance glance GLANCE_DBPASS
os_admin
os_register glance image "OpenStack Image" GLANCE_PASS :9292

apt_install glance-api
conf=/etc/glance/glance-api.conf
# Debian runs glance-api without uwsgi (its init script says uwsgi is broken for glance): bind_host applies.
ini_merge "$conf" root:glance <<EOF2
[DEFAULT]
bind_host = $MGMT_IP
[database]
connection = $(db_url glance "$GLANCE_DBPASS" glance)
[paste_deploy]
flavor = keystone
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = /var/lib/glance/images/
EOF2
ini_authtoken "$conf" glance "$GLANCE_PASS"
ini_behind_proxy "$conf"
uwsgi_processes /etc/glance/glance-api-uwsgi.ini 2
install -d -o glance -g glance -m 0750 /var/lib/glance/images

as_service glance glance-manage db_sync >/dev/null || die "glance-manage db_sync failed: see /var/log/glance"
svc_apply "$conf /etc/glance/glance-api-uwsgi.ini packages" glance-api
wait_http "http://$CONTROLLER_IP:9292" 120
wait_for "glance to list images" 60 openstack image list
log "glance ready"

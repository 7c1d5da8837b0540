#!/usr/bin/env bash
# step: keystone
# roles: controller
# after: controller-infra
# timeout: 1200
# uses: service
# inputs: node facts, cluster facts (CONTROLLER_IP, ELASTIC_IP), secrets ADMIN_PASS DEMO_PASS KEYSTONE_DBPASS
# guarantees: keystone (uwsgi, keystone.service) on MGMT_IP:5000 only (links to https://ELASTIC_IP:5000 for clients of the public-tls proxy) with fernet tokens; identity endpoints public=https://ELASTIC_IP:5000/v3, internal/admin=http://CONTROLLER_IP:5000/v3; projects service and demo, user demo with roles myrole and member; /root/admin-openrc and /root/demo-openrc (OS_INTERFACE=internal)
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars ELASTIC_IP
load_secrets KEYSTONE_DBPASS ADMIN_PASS DEMO_PASS

apt_install keystone python3-openstackclient
db_ensure keystone keystone KEYSTONE_DBPASS

conf=/etc/keystone/keystone.conf
ini_merge "$conf" root:keystone <<EOF2
[database]
connection = $(db_url keystone "$KEYSTONE_DBPASS" keystone)
[token]
provider = fernet
[cache]
enabled = true
backend = oslo_cache.memcache_pool
memcache_servers = $CONTROLLER_IP:11211
EOF2
uwsgi_processes /etc/keystone/keystone-uwsgi.ini 2
ini_behind_proxy "$conf"
uwsgi_on_mgmt keystone

as_service keystone keystone-manage db_sync || die "keystone-manage db_sync failed: see /var/log/keystone"
for repo in fernet credential; do
    if [[ ! -e /etc/keystone/$repo-keys/0 ]]; then
        keystone-manage "${repo}_setup" --keystone-user keystone --keystone-group keystone ||
            die "keystone-manage ${repo}_setup failed"
        mark_changed keys
        log "$repo keys created"
    fi
done

svc_apply "$conf /etc/keystone/keystone-uwsgi.ini /etc/default/keystone keys" keystone
wait_http "http://$CONTROLLER_IP:5000/v3" 120

os_admin
# Bootstrap makes admin, its project and role and the identity endpoints (again after a run killed half-way: the
# token asked for is scoped to project admin). On an installed Keystone it is also how a rotated ADMIN_PASS
# arrives: it sets the password of an admin it cannot authenticate (admin can no longer ask).
if ! os_password_ok admin ADMIN_PASS admin; then
    log "bootstrapping keystone (admin user with the secret's password, admin project, identity endpoints)"
    OS_BOOTSTRAP_PASSWORD=$ADMIN_PASS keystone-manage bootstrap \
        --bootstrap-admin-url "$(internal_url :5000/v3/)" \
        --bootstrap-internal-url "$(internal_url :5000/v3/)" \
        --bootstrap-public-url "$(public_url :5000/v3/)" \
        --bootstrap-region-id "$OS_REGION" || die "keystone-manage bootstrap failed: see /var/log/keystone"
    wait_for "an admin token" 60 openstack token issue
    mark_changed user:admin
fi
os_ensure_endpoint identity public "$(public_url :5000/v3/)"
os_ensure_endpoint identity internal "$(internal_url :5000/v3/)"
os_ensure_endpoint identity admin "$(internal_url :5000/v3/)"

os_ensure_project service "Service Project"
os_ensure_project demo "Demo Project"
os_ensure_user demo DEMO_PASS
os_ensure_role myrole
os_ensure_grant demo demo myrole
# The services' secure-RBAC defaults (enforced since 2023.1-2025.1) let a project act only with member (or reader);
# the guide's myrole alone lets demo create no server, network or router there. keystone-manage bootstrap made it.
os_ensure_grant demo demo member

write_openrc() { # FILE USER PASSWORD PROJECT
    write_file "$1" 0600 <<EOF2
export OS_PROJECT_DOMAIN_NAME=Default
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_NAME=$4
export OS_USERNAME=$2
export OS_PASSWORD=$3
export OS_AUTH_URL=http://$CONTROLLER_IP:5000/v3
export OS_IDENTITY_API_VERSION=3
export OS_IMAGE_API_VERSION=2
export OS_REGION_NAME=$OS_REGION
# inside the VPC (this node, every node): the internal endpoints; the public ones name the Elastic IP
export OS_INTERFACE=internal
# the swift client reads its own variable, not OS_INTERFACE
export OS_ENDPOINT_TYPE=internalURL
EOF2
}
write_openrc /root/admin-openrc admin "$ADMIN_PASS" admin
write_openrc /root/demo-openrc demo "$DEMO_PASS" demo

# Prove it: a token for each user.
openstack token issue -f value -c expires >/dev/null || die "admin cannot get a token"
(
    # shellcheck disable=SC1091
    . /root/demo-openrc
    openstack token issue -f value -c expires >/dev/null
) || die "demo cannot get a token"
log "keystone ready"

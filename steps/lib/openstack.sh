#!/usr/bin/env bash
# steps/lib/openstack.sh: databases, RabbitMQ/Keystone settings shared by the services, idempotent Keystone and
# Neutron objects. Only function definitions (see common.sh for how the library is loaded).
# shellcheck disable=SC2034  # variables set here are used by the steps

OSA_LIB_OPENSTACK=1
OS_REGION=RegionOne

# ---------------------------------------------------------------------------------------------------- database
# mysql_root: the MariaDB client as root through the unix socket (Debian's root@localhost uses unix_socket).
mysql_root() { mysql --protocol=socket -uroot "$@"; }

# db_ensure DATABASE USER PASSWORD_SECRET: database and user with all privileges, from localhost and the network,
# and the secret's current password. Converges from any partial state: a run killed between CREATE USER and
# GRANT gets its grants, a password changed in the secret is applied (ALTER USER). The password travels on stdin
# to the client, never in arguments. Nothing changes when all of it is already so.
db_ensure() {
    local db=$1 user=$2 pass state
    pass=$(secret "$3") || exit 1
    # Three counts: the database (1), the user's hosts that have this password (2), the hosts with full grants (2).
    state=$(mysql_root -N <<SQL
SELECT (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '$db'),
       (SELECT COUNT(*) FROM mysql.user WHERE User = '$user' AND Host IN ('localhost', '%')
            AND authentication_string = PASSWORD('$pass')),
       (SELECT COUNT(*) FROM mysql.db WHERE User = '$user' AND Host IN ('localhost', '%') AND Db = '$db'
            AND Select_priv = 'Y' AND Insert_priv = 'Y' AND Update_priv = 'Y' AND Delete_priv = 'Y'
            AND Create_priv = 'Y' AND Drop_priv = 'Y' AND Index_priv = 'Y' AND Alter_priv = 'Y'
            AND References_priv = 'Y' AND Create_view_priv = 'Y' AND Trigger_priv = 'Y');
SQL
    ) || die "cannot query MariaDB for database $db / user $user"
    read -r -a state <<<"$state"
    [[ "${state[*]}" == "1 2 2" ]] && return 0
    mysql_root <<SQL || die "could not create database $db / user $user in MariaDB"
CREATE DATABASE IF NOT EXISTS \`$db\`;
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$pass';
CREATE USER IF NOT EXISTS '$user'@'%' IDENTIFIED BY '$pass';
ALTER USER '$user'@'localhost' IDENTIFIED BY '$pass';
ALTER USER '$user'@'%' IDENTIFIED BY '$pass';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$user'@'localhost';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '$user'@'%';
SQL
    mark_changed "database:$db"
    log "database $db and user $user ensured (before: database ${state[0]}, the secret's password on ${state[1]} of 2" \
        "hosts, grants on ${state[2]} of 2)"
}

# db_url USER PASSWORD DATABASE: the SQLAlchemy URL on the controller's management address.
db_url() { printf 'mysql+pymysql://%s:%s@%s/%s' "$1" "$2" "$CONTROLLER_IP" "$3"; }

# as_service USER COMMAND: run a management command as the service's system user.
as_service() {
    local user=$1
    shift
    runuser -u "$user" -- "$@"
}

# ---------------------------------------------------------------------------------------------------- settings
# rabbit_url: oslo.messaging transport URL (needs RABBIT_PASS loaded with load_secrets).
rabbit_url() { printf 'rabbit://openstack:%s@%s:5672/' "$RABBIT_PASS" "$CONTROLLER_IP"; }

# Endpoint URLs: public ones name the Elastic IP (what a client in allowed_cidr reaches), internal/admin ones the
# controller's management address (what everything inside the VPC uses: no node reaches its own Elastic IP).
# The public side is https (the public-tls step's proxy on PUBLIC_IP); PUBLIC_SCHEME is the one place it lives.
public_url() { printf '%s://%s%s' "${PUBLIC_SCHEME:-https}" "$ELASTIC_IP" "$1"; }  # public_url :5000/v3/
internal_url() { printf 'http://%s%s' "$CONTROLLER_IP" "$1"; }                      # internal_url :9292

# ini_ks_auth FILE SECTION USER PASSWORD: a keystoneauth "password" block (placement, neutron, nova sections...).
# valid_interfaces = internal: the service finds its peers' internal endpoints in the catalog, never the public
# ones (the Elastic IP is unreachable from inside the VPC).
ini_ks_auth() {
    ini_merge "$1" <<EOF
[$2]
auth_url = $(internal_url :5000/v3)
valid_interfaces = internal
auth_type = password
project_domain_name = Default
user_domain_name = Default
region_name = $OS_REGION
project_name = service
username = $3
password = $4
EOF
}

# ini_authtoken FILE USER PASSWORD: [keystone_authtoken] of an API service.
ini_authtoken() {
    ini_ks_auth "$1" keystone_authtoken "$2" "$3"
    ini_merge "$1" <<EOF
[keystone_authtoken]
www_authenticate_uri = $(public_url :5000)
interface = internal
service_token_roles = service
service_token_roles_required = true
EOF
    ini_authtoken_cache "$1" keystone_authtoken
}

# ini_authtoken_cache FILE SECTION: keystonemiddleware's token cache, encrypted and signed: memcached has no
# authentication, and its entries are valid tokens.
ini_authtoken_cache() {
    local key
    key=$(secret MEMCACHE_SECRET_KEY) || exit 1
    ini_merge "$1" <<EOF
[$2]
memcached_servers = $CONTROLLER_IP:11211
memcache_security_strategy = ENCRYPT
memcache_secret_key = $key
EOF
}

# ini_service_user FILE USER PASSWORD: send a service token with every call made for a user (nova to cinder,
# cinder to nova...), which the receiver accepts only from a user with the service role (OSSA-2023-003: Cinder
# refuses a detach that is not a service call).
ini_service_user() {
    ini_ks_auth "$1" service_user "$2" "$3"
    ini_set "$1" service_user send_service_user_token true
}

# ini_common FILE: transport URL and auth strategy, the lines every service shares.
ini_common() {
    ini_merge "$1" <<EOF
[DEFAULT]
transport_url = $(rabbit_url)
auth_strategy = keystone
[oslo_concurrency]
lock_path = /var/lib/${2:-$(basename "$(dirname "$1")")}/tmp
EOF
}

# uwsgi_processes INI N: fewer uwsgi workers than Debian's default of 8 (a POC on 16 GiB runs ~10 APIs).
uwsgi_processes() {
    [[ -e "$1" ]] || return 0
    ini_set "$1" uwsgi processes "$2"
}

# ---------------------------------------------------------------------------------------------------- keystone
# os_admin: the admin credentials in the environment (OS_PASSWORD in env, never an argument).
os_admin() {
    local pass
    pass=$(secret ADMIN_PASS) || exit 1
    export OS_USERNAME=admin OS_PASSWORD="$pass" OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default \
        OS_PROJECT_DOMAIN_NAME=Default OS_AUTH_URL="http://$CONTROLLER_IP:5000/v3" OS_IDENTITY_API_VERSION=3 \
        OS_IMAGE_API_VERSION=2 OS_INTERFACE=internal OS_REGION_NAME=$OS_REGION
}

# os_id KIND NAME [ARGS...]: the id of a named object, empty when absent (e.g. os_id project demo).
os_id() {
    local kind=$1 name=$2
    shift 2
    openstack "$kind" show "$@" -f value -c id "$name" 2>/dev/null || true
}

os_ensure_project() {
    [[ -n "$(os_id project "$1" --domain default)" ]] && return 0
    openstack project create --domain default --description "$2" "$1" >/dev/null || die "cannot create project $1"
    mark_changed "project:$1"
    log "project $1 created"
}

os_ensure_role() {
    [[ -n "$(os_id role "$1")" ]] && return 0
    openstack role create "$1" >/dev/null || die "cannot create role $1"
    mark_changed "role:$1"
    log "role $1 created"
}

# os_password_ok USER PASSWORD_SECRET [PROJECT]: Keystone gives USER a token (for PROJECT: a role there too) for
# the secret's password: 201 true, 401 false, else stop. jq and curl take the password from env/stdin, not argv.
os_password_ok() {
    local pass code
    pass=$(secret "$2") || exit 1
    for _ in 1 2 3 4 5; do
        code=$(OSA_U=$1 OSA_P=$pass OSA_S=${3:-} jq -c '{auth: {identity: {methods: ["password"], password: {user:
            {name: env.OSA_U, domain: {id: "default"}, password: env.OSA_P}}}}} * if env.OSA_S > "" then {auth:
            {scope: {project: {name: env.OSA_S, domain: {id: "default"}}}}} else {} end' -n |
            curl -s -o /dev/null -w '%{http_code}' -m 20 -H 'Content-Type: application/json' -d @- \
                "$(internal_url :5000/v3/auth/tokens)") || true
        case $code in 201) return 0 ;; 401) return 1 ;; esac
        sleep 3
    done
    die "Keystone answered HTTP $code to a token request of $1"
}

# os_ensure_user NAME PASSWORD_SECRET: a user of domain Default with the secret's password: created, or given it by
# admin when Keystone refuses it (a rotated secret). Passwords reach openstacksdk through the environment.
os_ensure_user() {
    local id pass
    id=$(os_id user "$1" --domain default)
    if [[ -n "$id" ]] && os_password_ok "$1" "$2"; then return 0; fi
    pass=$(secret "$2") || exit 1
    OSA_USER=$1 OSA_ID=$id OSA_PASS=$pass python3 - <<'PY' || die "cannot create user $1 or set its password"
import os, openstack
c, e = openstack.connect().identity, os.environ
if e["OSA_ID"]:
    c.update_user(e["OSA_ID"], password=e["OSA_PASS"])
else:
    c.create_user(name=e["OSA_USER"], password=e["OSA_PASS"], domain_id="default")
PY
    if [[ -z "$id" ]]; then
        mark_changed "user:$1"
        log "user $1 created"
    else
        # a refusal the new password does not cure (a disabled user) would reset it on every run
        os_password_ok "$1" "$2" || die "Keystone still refuses the password of $1 (disabled?)"
        mark_changed "user:$1:password"
        log "user $1: the secret's password set (Keystone refused it)"
    fi
}

# os_ensure_grant USER PROJECT ROLE
os_ensure_grant() {
    local have
    have=$(openstack role assignment list --user "$1" --user-domain Default --project "$2" --project-domain Default \
        --role "$3" -f value -c Role 2>/dev/null) || die "cannot list role assignments of $1"
    [[ -n "$have" ]] && return 0
    openstack role add --user "$1" --user-domain Default --project "$2" --project-domain Default "$3" ||
        die "cannot give role $3 on $2 to $1"
    mark_changed "grant:$1:$2:$3"
    log "role $3 on project $2 given to $1"
}

os_ensure_service() { # NAME TYPE DESCRIPTION
    local have
    have=$(openstack service list -f value -c Name -c Type | awk -v n="$1" -v t="$2" '$1 == n && $2 == t')
    [[ -n "$have" ]] && return 0
    openstack service create --name "$1" --description "$3" "$2" >/dev/null || die "cannot create service $1"
    mark_changed "service:$1"
    log "service $1 ($2) created"
}

# os_ensure_endpoint TYPE INTERFACE URL: create, or correct a URL that differs.
os_ensure_endpoint() {
    local type=$1 iface=$2 url=$3 id have
    read -r id have < <(openstack endpoint list --service "$type" --interface "$iface" --region "$OS_REGION" \
        -f value -c ID -c URL 2>/dev/null | head -n1) || true
    if [[ -z "${id:-}" ]]; then
        openstack endpoint create --region "$OS_REGION" "$type" "$iface" "$url" >/dev/null ||
            die "cannot create the $iface endpoint of $type"
        mark_changed "endpoint:$type:$iface"
        log "endpoint $type $iface $url created"
    elif [[ "$have" != "$url" ]]; then
        openstack endpoint set --url "$url" "$id" || die "cannot update endpoint $id"
        mark_changed "endpoint:$type:$iface"
        log "endpoint $type $iface corrected from $have to $url"
    fi
}

# os_register USER TYPE DESCRIPTION PASSWORD_SECRET PORT_PATH [SERVICE_NAME [ADMIN_PORT_PATH]]: the service user
# (admin and service in project service: the services require the service role in service tokens), the service (named like the user unless given) and its endpoints: public on the
# Elastic IP, internal and admin on the management address (PORT_PATH like ":9292" or ":8774/v2.1"). An endpoint
# of an older install with another URL is corrected.
os_register() {
    local user=$1 type=$2 desc=$3 pass=$4 path=$5 name=${6:-$1} admin_path=${7:-$5}
    require_vars ELASTIC_IP
    os_ensure_user "$user" "$pass"
    os_ensure_grant "$user" service admin
    os_ensure_role service
    os_ensure_grant "$user" service service
    os_ensure_service "$name" "$type" "$desc"
    os_ensure_endpoint "$type" public "$(public_url "$path")"
    os_ensure_endpoint "$type" internal "$(internal_url "$path")"
    os_ensure_endpoint "$type" admin "$(internal_url "$admin_path")"
}

# ---------------------------------------------------------------------------------------------------- neutron
# os_ensure NAME KIND CREATE_ARGS...: `openstack KIND create CREATE_ARGS NAME` unless it exists; prints the id.
os_ensure() {
    local name=$1 kind=$2 id
    shift 2
    id=$(os_id "$kind" "$name")
    if [[ -z "$id" ]]; then
        id=$(openstack "$kind" create "$@" -f value -c id "$name") || die "cannot create $kind $name"
        mark_changed "$kind:$name"
        log "$kind $name created" >&2
    fi
    printf '%s' "$id"
}

# ---------------------------------------------------------------------------------------------------- shared
# nova_conf_common: the nova.conf settings of both the controller and compute nodes (secrets NOVA_PASS,
# PLACEMENT_PASS, NEUTRON_PASS and RABBIT_PASS loaded).
nova_conf_common() {
    local conf=/etc/nova/nova.conf
    ini_merge "$conf" root:nova <<EOF2
[DEFAULT]
my_ip = $MGMT_IP
[api]
auth_strategy = keystone
[glance]
api_servers = $(internal_url :9292)
[vnc]
enabled = true
novncproxy_base_url = $(public_url :6080/vnc_auto.html)
server_listen = \$my_ip
server_proxyclient_address = \$my_ip
[cinder]
catalog_info = volumev3::internalURL
EOF2
    ini_common "$conf" nova
    ini_authtoken "$conf" nova "$NOVA_PASS"
    ini_ks_auth "$conf" placement placement "$PLACEMENT_PASS"
    ini_ks_auth "$conf" neutron neutron "$NEUTRON_PASS"
    ini_set "$conf" cinder os_region_name "$OS_REGION"
    # nova-status (Zed) requires nova to send a service token with the user's token.
    ini_service_user "$conf" nova "$NOVA_PASS"
}

# neutron_conf_common: neutron.conf settings shared by the server and the agents' nodes.
neutron_conf_common() {
    local conf=/etc/neutron/neutron.conf
    ini_common "$conf" neutron
    ini_authtoken "$conf" neutron "$NEUTRON_PASS"
    # Debian's neutron 21 marks linuxbridge experimental: server and agents refuse it unless enabled.
    ini_set "$conf" experimental linuxbridge true
}

# linuxbridge_conf NAME: the linuxbridge agent (provider physnet on PROVIDER_IF, VXLAN from MGMT_IP,
# security groups through iptables).
linuxbridge_conf() {
    ini_merge /etc/neutron/plugins/ml2/linuxbridge_agent.ini root:neutron <<EOF2
[linux_bridge]
physical_interface_mappings = provider:$PROVIDER_IF
[vxlan]
enable_vxlan = true
local_ip = $MGMT_IP
l2_population = true
[securitygroup]
enable_security_group = true
firewall_driver = neutron.agent.linux.iptables_firewall.IptablesFirewallDriver
EOF2
}

# cinder_conf_common: cinder.conf of the controller and the block nodes (CINDER_DBPASS, CINDER_PASS, NOVA_PASS
# and RABBIT_PASS loaded).
cinder_conf_common() {
    local conf=/etc/cinder/cinder.conf
    ini_merge "$conf" root:cinder <<EOF2
[DEFAULT]
my_ip = $MGMT_IP
glance_api_servers = $(internal_url :9292)
osapi_volume_workers = 1
[database]
connection = $(db_url cinder "$CINDER_DBPASS" cinder)
EOF2
    ini_common "$conf" cinder
    ini_authtoken "$conf" cinder "$CINDER_PASS"
    ini_service_user "$conf" cinder "$CINDER_PASS"
    # Cinder tells nova about volume events through the catalog; its default interface is public. Those calls
    # are privileged: as the nova service user (Zed's cinder sends them with the caller's token without it).
    ini_ks_auth "$conf" nova nova "$NOVA_PASS"
    ini_set "$conf" nova interface internal
}

# swift_conf_common: swift.conf (the hash path prefix/suffix shared by every Swift node) and /etc/swift's owner.
swift_conf_common() {
    local prefix suffix
    prefix=$(secret SWIFT_HASH_PATH_PREFIX) || exit 1
    suffix=$(secret SWIFT_HASH_PATH_SUFFIX) || exit 1
    install -d -o root -g swift -m 0755 /etc/swift
    ini_merge /etc/swift/swift.conf root:swift <<EOF2
[swift-hash]
swift_hash_path_suffix = $suffix
swift_hash_path_prefix = $prefix
[storage-policy:0]
name = Policy-0
default = yes
EOF2
    install -d -o swift -g swift -m 0755 /var/cache/swift
}

# Swift's rings: name and port of each server.
SWIFT_RINGS=(account:6202 container:6201 object:6200)

#!/usr/bin/env bash
# steps/lib/optional/service.sh: what the step of an OpenStack service needs (`# uses: service`): its database, the
# settings the services share (RabbitMQ, Keystone authentication, token caches, service tokens, uwsgi workers) and
# its Keystone user, service and endpoints. Only function definitions (see common.sh). network-fix, verify and
# launch-instance do without it: an SSM document holds at most 64 KB.

# ---------------------------------------------------------------------------------------------------- database
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

# ---------------------------------------------------------------------------------------------------- settings
# rabbit_url: oslo.messaging transport URL (needs RABBIT_PASS loaded with load_secrets).
rabbit_url() { printf 'rabbit://openstack:%s@%s:5672/' "$RABBIT_PASS" "$CONTROLLER_IP"; }

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

# uwsgi_processes INI N: fewer uwsgi workers than Debian's default of 8 (a POC on 16 GiB runs ~10 APIs), and every
# response says `Connection: close`. Debian's uwsgi APIs serve a plain --http-socket, which closes the connection
# after each response without saying so; after a body-less answer (204, a DELETE) a client may send its next
# request on that socket and gets "Connection reset by peer" (seen: `openstack server delete --wait`, and 4 of 15
# GETs right after a DELETE on one keystoneauth session; 0 of 15 with the header).
uwsgi_processes() {
    [[ -e "$1" ]] || return 0
    ini_set "$1" uwsgi processes "$2"
    ini_set "$1" uwsgi add-header "Connection: close"
}
# Behind the public-tls step's proxy (lib/optional/public.sh): the APIs on the management address only.
# ini_behind_proxy FILE: trust the proxy's X-Forwarded-Proto/-Host (oslo.middleware's http_proxy_to_wsgi, in every
# API's pipeline), so links the API builds from the request (version discovery) say https://ELASTIC_IP:PORT to a
# client that came through the proxy; a client inside sends no such header and gets http://CONTROLLER_IP:PORT.
ini_behind_proxy() { ini_set "$1" oslo_middleware enable_proxy_headers_parsing true; }

# uwsgi_on_mgmt NAME: Debian's init script of a uwsgi API (its NAME= line) passes `--http-socket :PORT` (every
# address), then reads /etc/default/NAME: there the address becomes MGMT_IP.
uwsgi_on_mgmt() {
    write_file "/etc/default/$1" 0644 <<EOF
# openstack-aws (uwsgi_on_mgmt): on the management address only; the public-tls step's proxy has PUBLIC_IP
DAEMON_ARGS=\$(printf '%s' "\$DAEMON_ARGS" | sed 's/--http-socket [^ ]*:/--http-socket $MGMT_IP:/')
EOF
}

# ---------------------------------------------------------------------------------------------------- keystone
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

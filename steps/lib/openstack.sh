#!/usr/bin/env bash
# steps/lib/openstack.sh: what every step that talks to OpenStack needs: admin's credentials, idempotent objects,
# the endpoints' URLs. Only function definitions (see common.sh for how the library is loaded). What only the
# services' own steps use is in lib/optional (service, nova, neutron, cinder, swift): every step's SSM document
# carries this file, and a document holds at most 64 KB.
# shellcheck disable=SC2034  # variables set here are used by the steps

OSA_LIB_OPENSTACK=1
OS_REGION=RegionOne
# neutron_backend: Neutron's layer 2 on this node's release: linuxbridge on Debian 12 (Zed), openvswitch on 13
# (2025.1 removed linuxbridge: docs/epoxy-trixie-plan.md).
neutron_backend() { if grep -qx 'VERSION_CODENAME=bookworm' "${OSA_OS_RELEASE:-/etc/os-release}"; then echo linuxbridge; else echo openvswitch; fi; }

# ---------------------------------------------------------------------------------------------------- database
# mysql_root: the MariaDB client as root through the unix socket (Debian's root@localhost uses unix_socket).
mysql_root() { mysql --protocol=socket -uroot "$@"; }

# as_service USER COMMAND: run a management command as the service's system user.
as_service() {
    local user=$1
    shift
    runuser -u "$user" -- "$@"
}

# ---------------------------------------------------------------------------------------------------- endpoints
# Endpoint URLs: public ones name the Elastic IP (what a client in allowed_cidr reaches), internal/admin ones the
# controller's management address (what everything inside the VPC uses: no node reaches its own Elastic IP).
# The public side is https (the public-tls step's proxy on PUBLIC_IP); PUBLIC_SCHEME is the one place it lives.
public_url() { printf '%s://%s%s' "${PUBLIC_SCHEME:-https}" "$ELASTIC_IP" "$1"; }  # public_url :5000/v3/
internal_url() { printf 'http://%s%s' "$CONTROLLER_IP" "$1"; }                      # internal_url :9292

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

# ---------------------------------------------------------------------------------------------------- neutron
# The controller's provider bridge: PROVIDER_IF, the backhaul to the computes (lib/optional/neutron.sh) and every
# port of the provider network there (routers' gateways, DHCP); the network fix translates MACs at PROVIDER_IF.
PROVIDER_BRIDGE=br-provider
# The openvswitch backend's bridge for physnet provider (the datapath step makes it; the backhaul joins it to the
# provider network).
OVS_PROVIDER_BRIDGE=br-ex

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

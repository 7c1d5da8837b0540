#!/usr/bin/env bash
# steps/lib/optional/walkthrough.sh: the install guide's "Launch an instance" (self-service and provider networks) as a
# project member does it, with the current OS_* credentials: used by launch-instance and by the rig's outside proofs.
# Only function definitions; a step names it in its "# uses:" header (with checks, whose server_* functions it calls).

# pool_addresses: provider-subnet's allocation pool, one address a line (network-fix makes one single-address range
# per secondary address of the provider ENI).
pool_addresses() {
    openstack subnet show provider-subnet -f json -c allocation_pools |
        jq -r '.allocation_pools[] | select(.start == .end) | .start' | sort
}

# pool_free: how many addresses of the pool no port holds (router gateways, floating IPs and instances on provider
# take them). As admin: a project sees only its own ports.
pool_free() {
    local used
    used=$(openstack port list --network provider -f json -c "Fixed IP Addresses" |
        jq -r '.[]."Fixed IP Addresses"[].ip_address' | sort)
    comm -23 <(pool_addresses) <(printf '%s\n' "$used") | grep -c . || true
}

# server_up NAME NETWORK: instance NAME (m1.verify, verify-image) on NETWORK, made unless there (one in ERROR is made
# again), ACTIVE or the step stops with Nova's fault.
server_up() {
    local status
    server_replace_failed "$1"
    if [[ -z "$(os_id server "$1")" ]]; then
        openstack server create --flavor m1.verify --image verify-image --network "$2" "$1" >/dev/null ||
            die "cannot create $1"
        mark_changed "server:$1"
        log "instance $1 created" >&2
    fi
    wait_for "$1 to leave BUILD" 900 server_settled "$1"
    status=$(server_status "$1")
    [[ "$status" == ACTIVE ]] || die "$1 is $status: $(openstack server show "$1" -f json -c fault |
        jq -r '.fault.message // "?"')"
}

# walkthrough_up NAME CIDR: network NAME-net (subnet CIDR, DNS the VPC resolver), router NAME-router with an external
# gateway on provider at an address Neutron picks from the pool, instance NAME-instance (m1.verify, verify-image)
# and a floating IP Neutron picks, associated. Idempotent. Prints "FLOATING_IP INSTANCE_ADDRESS ROUTER_ID".
walkthrough_up() {
    local name=$1 cidr=$2 router_id server_id port fip addr
    require_vars VPC_DNS
    default_sg_open
    os_ensure "$name-net" network >/dev/null
    os_ensure "$name-subnet" subnet --network "$name-net" --subnet-range "$cidr" --dns-nameserver "$VPC_DNS" \
        >/dev/null
    router_id=$(os_ensure "$name-router" router)
    if ! openstack port list --router "$router_id" --network "$name-net" -f value -c ID | grep . >/dev/null; then
        openstack router add subnet "$router_id" "$name-subnet" || die "cannot attach $name-subnet to $name-router"
        mark_changed "router:$name-router:interface"
    fi
    if [[ -z "$(openstack router show "$router_id" -f json -c external_gateway_info |
        jq -r '.external_gateway_info.network_id // empty')" ]]; then
        openstack router set "$router_id" --external-gateway provider ||
            die "cannot give $name-router a gateway on provider: is provider-subnet's pool used up? ('openstack floating ip list'; more addresses: config floating_ips)"
        mark_changed "router:$name-router:gateway"
    fi
    server_up "$name-instance" "$name-net"
    server_id=$(os_id server "$name-instance")
    port=$(openstack port list --device-id "$server_id" --network "$name-net" -f value -c ID | head -n1)
    addr=$(openstack port show "$port" -f json -c fixed_ips | jq -r '.fixed_ips[0].ip_address')
    fip=$(openstack floating ip list --port "$port" -f value -c "Floating IP Address" | head -n1)
    if [[ -z "$fip" ]]; then
        fip=$(openstack floating ip create provider -f value -c floating_ip_address) ||
            die "no floating IP for $name-instance: is provider-subnet's pool used up? (config floating_ips)"
        openstack floating ip set --port "$port" "$fip" || die "cannot associate $fip with $name-instance"
        mark_changed "floating-ip:$fip"
        log "floating IP $fip on $name-instance ($addr)" >&2
    fi
    printf '%s %s %s\n' "$fip" "$addr" "$router_id"
}

# provider_up NAME: the guide's provider-network instance: NAME-instance directly on the shared network provider. Its
# address comes from the pool (a secondary address of the provider ENI, with an Elastic IP of its own) by DHCP, which
# the provider network's DHCP port serves through the backhaul; it reaches the VPC as the ENI (the network fix finds
# its MAC in the DHCP agent's hosts file). The project's default security group lets ping and TCP (ssh) in.
# Idempotent. Prints "ADDRESS".
provider_up() {
    default_sg_open
    server_up "$1-instance" provider
    openstack server show "$1-instance" -f json -c addresses | jq -r '.addresses.provider[0] // empty'
}

# walkthrough_down NAME: everything walkthrough_up NAME or provider_up NAME made, removed (what is already gone is
# skipped), so the pool's addresses are free again. A test's teardown, not a change to the cloud: nothing is marked
# changed.
walkthrough_down() {
    local name=$1 server_id router_id port fip
    server_id=$(os_id server "$name-instance")
    if [[ -n "$server_id" ]]; then
        for port in $(openstack port list --device-id "$server_id" -f value -c ID); do
            for fip in $(openstack floating ip list --port "$port" -f value -c ID); do
                openstack floating ip delete "$fip" || die "cannot delete floating IP $fip of $name-instance"
            done
        done
        openstack server delete --wait "$server_id" || die "cannot delete $name-instance"
    fi
    router_id=$(os_id router "$name-router")
    if [[ -n "$router_id" ]]; then
        if [[ -n "$(os_id subnet "$name-subnet")" ]]; then
            openstack router remove subnet "$router_id" "$name-subnet" 2>/dev/null || true
        fi
        openstack router delete "$router_id" || die "cannot delete $name-router"
    fi
    if [[ -n "$(os_id network "$name-net")" ]]; then
        openstack network delete "$name-net" || die "cannot delete $name-net"
    fi
}

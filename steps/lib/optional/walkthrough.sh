#!/usr/bin/env bash
# steps/lib/optional/walkthrough.sh: the install guide's "Launch an instance" (self-service network) as a project member
# does it, with the current OS_* credentials: used by verify and by the rig's outside proof. Only function
# definitions; a step names it in its "# uses:" header (with checks, whose server_* functions it calls).

# pool_free: how many addresses of provider-subnet's allocation pool no port holds (router gateways and floating
# IPs both take them).
pool_free() {
    local pool used
    pool=$(openstack subnet show provider-subnet -f json -c allocation_pools |
        jq -r '.allocation_pools[] | select(.start == .end) | .start' | sort)
    used=$(openstack port list --network provider -f json -c "Fixed IP Addresses" |
        jq -r '.[]."Fixed IP Addresses"[].ip_address' | sort)
    comm -23 <(printf '%s\n' "$pool") <(printf '%s\n' "$used") | grep -c . || true
}

# walkthrough_up NAME CIDR: network NAME-net (subnet CIDR, DNS the VPC resolver), router NAME-router with an external
# gateway on provider at an address Neutron picks from the pool, instance NAME-instance (m1.verify, verify-image)
# and a floating IP Neutron picks, associated. Idempotent. Prints "FLOATING_IP INSTANCE_ADDRESS ROUTER_ID".
walkthrough_up() {
    local name=$1 cidr=$2 router_id server_id port fip addr status
    require_vars VPC_DNS
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
    server_replace_failed "$name-instance"
    if [[ -z "$(os_id server "$name-instance")" ]]; then
        openstack server create --flavor m1.verify --image verify-image --network "$name-net" "$name-instance" \
            >/dev/null || die "cannot create $name-instance"
        mark_changed "server:$name-instance"
        log "instance $name-instance created" >&2
    fi
    wait_for "$name-instance to leave BUILD" 900 server_settled "$name-instance"
    status=$(server_status "$name-instance")
    [[ "$status" == ACTIVE ]] || die "$name-instance is $status: $(openstack server show "$name-instance" -f json \
        -c fault | jq -r '.fault.message // "?"')"
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

# walkthrough_down NAME: everything walkthrough_up NAME made, removed (what is already gone is skipped), so the pool's
# addresses are free again. A test's teardown, not a change to the cloud: nothing is marked changed.
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

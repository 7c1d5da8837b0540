#!/usr/bin/env bash
# step: launch-instance
# roles: controller
# after: verify
# timeout: 1800
# uses: checks, walkthrough
# inputs: cluster facts (COMPUTE_IPS, BLOCK_IPS, OBJECT_IPS, VPC_DNS, optional PROBE_IP), verify's image, flavor and router; secrets ADMIN_PASS DEMO_PASS
# guarantees: one CHECK line per check (ok, fail, or skip with the reason): with 2+ compute nodes each hypervisor up and running an instance pinned to it; 10 rounds of Neutron create/delete as demo with no call over 60 s (neutron-api-churn); no management port of the VPC answers from the router's namespace while the same ports answer from the controller (tenants-kept-out); the install guide's "Launch an instance" as demo with demo's own network, router (gateway from the pool) and Neutron-picked floating IP works (router and instance reach PROBE_IP, floating IP live) and is removed again (skip when fewer than 2 pool addresses are free); then the guide's provider-network instance as demo, directly on network provider: ACTIVE with a pool address (provider-instance-address; fails naming the pool when it is used up, skips without a pool), leased over DHCP (provider-instance-dhcp, its console), reaches PROBE_IP (provider-instance-to-internet, the test image's console; skip for another image), removed again; what a killed run left of either walkthrough is removed first; exit non-zero when any check fails
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars VPC_DNS
PROBE_IP=${PROBE_IP:-198.51.100.10}
os_admin
failed=0
router_id=$(os_id router router)
[[ -n "$router_id" ]] || die "router 'router' is missing: run network-fix first"
ns="qrouter-$router_id"
n_compute=$(words "${COMPUTE_IPS:-}")
[[ -n "$(os_id image verify-image)" && -n "$(os_id flavor m1.verify)" ]] ||
    die "verify-image or flavor m1.verify is missing: run verify first"

# --- 2+ compute nodes: each hypervisor of COMPUTE_IPS (nova's Host IP) up and running an instance pinned to it
# (a fresh one each run, deleted after)
if ((n_compute >= 2)); then
    computes() { # host ip state
        openstack hypervisor list -f value -c 'Hypervisor Hostname' -c 'Host IP' -c State |
            awk -v ips=" $COMPUTE_IPS " 'index(ips, " " $2 " ") {sub(/\..*/, "", $1); print}'
    }
    all_up() { (($(computes | grep -c ' up$') == n_compute)) || { computes; return 1; }; }
    check hypervisors-up "$n_compute hypervisors ($COMPUTE_IPS) up" retry 10 3 all_up
    mapfile -t hosts < <(computes | cut -d' ' -f1)
    pin() { openstack server show "verify-on-$1" -f value -c OS-EXT-SRV-ATTR:host -c status 2>/dev/null | xargs; }
    unpin() { [[ -z "$(pin "$1")" ]] || openstack server delete --wait "verify-on-$1"; }
    built() { [[ "$(pin "$1")" != *BUILD ]]; }
    runs_on() {
        retry 120 5 built "$1"
        [[ "$(pin "$1")" == "$1 ACTIVE" ]] ||
            { pin "$1"; openstack server show "verify-on-$1" -f value -c fault; false; }
    }
    net=$(os_id network selfservice)
    for h in "${hosts[@]}"; do
        unpin "$h" || true
        openstack server create --flavor m1.verify --image verify-image --nic "net-id=$net" \
            --availability-zone "nova:$h" "verify-on-$h" >/dev/null || true
    done
    for h in "${hosts[@]}"; do
        check "instance-on-$h" "verify-on-$h (zone nova:$h) ACTIVE on $h" runs_on "$h"
        retry 3 5 unpin "$h" >/dev/null || warn "verify-on-$h not deleted (the next run replaces it)"
    done
fi

# --- Neutron's API under churn (issue 11: a router delete hung for minutes): as demo, 10 rounds of a network,
# subnet, port and router with an interface, created and deleted; every call must answer within 60 s.
neutron_churn() (
    # shellcheck disable=SC1091
    . /root/demo-openrc
    timeout 1200 python3 - <<'PY'
import os
import signal
import sys
import time

import openstack

CALL_TIMEOUT = int(os.environ.get("OSA_CALL_TIMEOUT", "60"))
conn = openstack.connect(api_timeout=CALL_TIMEOUT)
stats = {"calls": 0, "slowest": (0.0, "")}


def hung(signum, frame):
    raise TimeoutError(f"no answer within {CALL_TIMEOUT} s")


signal.signal(signal.SIGALRM, hung)


def call(what, fn, *args, **kwargs):
    t = time.monotonic()
    signal.alarm(CALL_TIMEOUT)
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        sys.exit(f"{what}: {type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
        stats["calls"] += 1
        stats["slowest"] = max(stats["slowest"], (time.monotonic() - t, what))


t0 = time.monotonic()
# leftovers of an interrupted run first
for router in [r for r in conn.network.routers() if r.name.startswith("verify-churn-")]:
    for port in conn.network.ports(device_id=router.id, device_owner="network:router_interface"):
        call("remove a leftover interface", conn.network.remove_interface_from_router, router, port_id=port.id)
    call("delete a leftover router", conn.network.delete_router, router)
for net in [n for n in conn.network.networks() if n.name.startswith("verify-churn-")]:
    for port in [p for p in conn.network.ports(network_id=net.id) if not p.device_owner.startswith("network:")]:
        call("delete a leftover port", conn.network.delete_port, port)
    call("delete a leftover network", conn.network.delete_network, net)
for i in range(10):
    name = f"verify-churn-{i}"
    net = call(f"{name}: create network", conn.network.create_network, name=name)
    subnet = call(f"{name}: create subnet", conn.network.create_subnet, network_id=net.id, ip_version=4,
                  cidr=f"10.199.{i}.0/24", name=name)
    port = call(f"{name}: create port", conn.network.create_port, network_id=net.id, name=name)
    router = call(f"{name}: create router", conn.network.create_router, name=name)
    call(f"{name}: add router interface", conn.network.add_interface_to_router, router, subnet_id=subnet.id)
    call(f"{name}: remove router interface", conn.network.remove_interface_from_router, router, subnet_id=subnet.id)
    call(f"{name}: delete router", conn.network.delete_router, router)
    call(f"{name}: delete port", conn.network.delete_port, port)
    call(f"{name}: delete network", conn.network.delete_network, net)
took, what = stats["slowest"]
print(f"10 rounds, {stats['calls']} calls in {time.monotonic() - t0:.0f} s; slowest {took:.1f} s ({what})")
PY
)
if churn=$(neutron_churn 2>&1); then
    check_line neutron-api-churn ok "as demo, each call < 60 s: $(tail -n1 <<<"$churn")"
else
    check_line neutron-api-churn fail "$(tail -n 3 <<<"$churn" | tr '\n' ' ')(see /var/log/neutron/neutron-api.log)"
    failed=$((failed + 1))
fi

# --- tenants kept out of the management plane (network-fix's osa-tenants chains): from the router's namespace, which
# is what an instance's traffic becomes after SNAT, no management port in the VPC answers, while the same ports
# answer from the controller itself (so the check can tell a filter from a dead service) and the probe answers.
mgmt_ports="$CONTROLLER_IP:3306 $CONTROLLER_IP:5672 $CONTROLLER_IP:11211 $CONTROLLER_IP:5000 $CONTROLLER_IP:22"
for ip in ${COMPUTE_IPS:-}; do mgmt_ports+=" $ip:22 $ip:16509"; done
for ip in ${BLOCK_IPS:-}; do mgmt_ports+=" $ip:22 $ip:3260"; done
for ip in ${OBJECT_IPS:-}; do mgmt_ports+=" $ip:873 $ip:6000 $ip:6001 $ip:6002"; done
from_router=() from_here=()
for target in $mgmt_ports; do
    if ip netns exec "$ns" timeout 3 bash -c "exec 3<>/dev/tcp/${target%:*}/${target##*:}" 2>/dev/null; then
        from_router+=("$target")
    fi
    if _osa_port_open "${target%:*}" "${target##*:}"; then from_here+=("$target"); fi
done
if ((${#from_router[@]})); then
    check_line tenants-kept-out fail "from $ns these management ports answer: ${from_router[*]} (iptables -S osa-tenants)"
    failed=$((failed + 1))
elif ((${#from_here[@]} == 0)); then
    check_line tenants-kept-out fail "no management port answers even from the controller: nothing proves the filter"
    failed=$((failed + 1))
else
    check_line tenants-kept-out ok "from $ns none of $(words "$mgmt_ports") management ports answers; from the controller ${#from_here[@]} do (${from_here[*]:0:3} ...); the probe answers the router (router-ping-probe)"
fi

# --- the install guide's "Launch an instance" as a user does it: demo's own network and router (its gateway an
# address Neutron picks from the pool, not the provider ENI's own), an instance behind it and a floating IP Neutron
# picks. Proves that any router and any pool address pass the VPC (the provider bridge's MAC translation). All of
# it is removed again, so the pool stays free for the cloud's users.
# shellcheck disable=SC1091
demo_down() ( . /root/demo-openrc && walkthrough_down "$1"; )
# What a killed run left goes first: it holds pool addresses the checks below count on.
for name in verify-user verify-provider; do
    demo_down "$name" || die "cannot remove demo's $name-* objects of an earlier run: the pool keeps their addresses"
done
user_walkthrough() (
    # shellcheck disable=SC1091
    . /root/demo-openrc
    walkthrough_up verify-user 172.16.2.0/24
)
free=$(pool_free)
if ((free < 2)); then
    why="provider-subnet's pool has $free free address(es); a user's router and floating IP need 2 (config floating_ips)"
    for name in user-router-ping-probe user-instance-ping-probe user-floating-ip-associated; do
        check_line "$name" skip "$why"
    done
elif ! read -r user_fip user_addr user_router < <(user_walkthrough); then
    check_line user-walkthrough fail "demo's own router, instance or floating IP could not be made (output above)"
    failed=$((failed + 1))
else
    user_ns="qrouter-$user_router"
    user_gw=$(openstack router show "$user_router" -f json -c external_gateway_info |
        jq -r '.external_gateway_info.external_fixed_ips[0].ip_address')
    check user-router-ping-probe "demo's router verify-user-router (gateway $user_gw from the pool): ip netns exec $user_ns ping $PROBE_IP" \
        retry 20 3 ip netns exec "$user_ns" ping -c 1 -W 2 "$PROBE_IP"
    probe_check user-instance-ping-probe verify-user-instance
    user_fip_live() {
        [[ "$(openstack floating ip show "$user_fip" -f value -c status)" == ACTIVE ]] &&
            ip netns exec "$user_ns" ip -o addr show | grep -F " $user_fip/32 " >/dev/null &&
            ip netns exec "$user_ns" ping -c 1 -W 2 "$user_addr" >/dev/null
    }
    check user-floating-ip-associated "$user_fip (picked by Neutron) -> $user_addr (verify-user-instance): ACTIVE on demo's router, instance answers" \
        retry 30 2 user_fip_live
fi
demo_down verify-user || die "cannot remove demo's walkthrough objects (verify-user-*): the pool keeps their addresses"

# --- the install guide's provider-network instance (README "Instances on the provider network"), as demo: directly
# on the shared network provider, on any compute. Its address comes from the pool, by DHCP from the provider
# network's port (through the backhaul); it reaches the VPC as the provider ENI and the internet through its own
# Elastic IP (the rig's outside proof provider-instance-from-outside). After demo's router and floating IP above are
# gone: with floating_ips=3, verify's floating IP and this instance hold 2. Removed again.
provider_walkthrough() (
    # shellcheck disable=SC1091
    . /root/demo-openrc
    provider_up verify-provider
)
leased() { console verify-provider-instance | grep -aiE 'lease|dhcp ok' | grep -aE "(^|[^0-9.])${1//./[.]}([^0-9.]|\$)"; }
pool=$(pool_addresses | paste -sd ' ')
names=(provider-instance-address provider-instance-dhcp provider-instance-to-internet)
if [[ -z "$pool" ]]; then
    for name in "${names[@]}"; do check_line "$name" skip "provider-subnet has no pool (config floating_ips=0)"; done
elif (($(pool_free) == 0)); then
    check_line provider-instance-address fail "provider-subnet's pool is used up: none of its $(words "$pool") addresses is free ('openstack port list --network provider'; more: config floating_ips)"
    failed=$((failed + 1))
    for name in "${names[@]:1}"; do check_line "$name" skip "no instance on provider (pool used up)"; done
elif ! addr=$(provider_walkthrough) || [[ -z "$addr" ]]; then
    check_line provider-instance-address fail "demo's instance on provider could not be made ACTIVE (output above; free pool addresses: $(pool_free))"
    failed=$((failed + 1))
    for name in "${names[@]:1}"; do check_line "$name" skip "no instance on provider"; done
else
    if [[ " $pool " == *" $addr "* ]]; then
        check_line provider-instance-address ok "verify-provider-instance ACTIVE on provider with $addr, a pool address ($pool)"
    else
        check_line provider-instance-address fail "verify-provider-instance has $addr, not in the pool ($pool)"
        failed=$((failed + 1))
    fi
    check provider-instance-dhcp "console of verify-provider-instance: a DHCP lease of $addr" retry 60 5 leased "$addr"
    probe_check provider-instance-to-internet verify-provider-instance
fi
demo_down verify-provider || die "cannot remove demo's instance on provider (verify-provider-instance): the pool keeps its address"

((failed == 0)) || die "$failed check(s) failed (CHECK lines above)"
log "all checks passed or skipped with a reason"

#!/usr/bin/env bash
# step: network-fix
# roles: controller
# after: neutron-controller, neutron-compute
# timeout: 1200
# inputs: node facts (MGMT_IF, MGMT_CIDR, PROVIDER_IF, PROVIDER_MAC, PROVIDER_ENI_IP, optional FLOATING_IPS, PUBLIC_IF, PUBLIC_IP, PUBLIC_GW, PUBLIC_CIDR), cluster facts (PROVIDER_CIDR, VPC_DNS, optional PROBE_IP), secrets ADMIN_PASS; the EC2 fix (source/dest check off on PUBLIC_IF's ENI) has run
# guarantees: external network provider (flat, physnet provider) with subnet PROVIDER_CIDR (gateway PUBLIC_IP, router address PROVIDER_ENI_IP, allocation pool FLOATING_IPS: the provider ENI's secondary addresses), self-service network selfservice 172.16.1.0/24 (DNS server VPC_DNS) and router "router" (project demo); the router's gateway port has PROVIDER_MAC; PROVIDER_IF has a locally administered MAC; forwarding, policy routing and MASQUERADE out PUBLIC_IF (not for FLOATING_IPS) persist across reboots (openstack-aws-netfix.service); cloud-init networking disabled; the router namespace reaches PROBE_IP
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars PROVIDER_IF PROVIDER_MAC PROVIDER_ENI_IP PUBLIC_IF PUBLIC_IP PUBLIC_GW PUBLIC_CIDR PROVIDER_CIDR VPC_DNS MGMT_CIDR
PROBE_IP=${PROBE_IP:-198.51.100.10}
PROVIDER_MAC=${PROVIDER_MAC,,}
FLOATING_IPS=${FLOATING_IPS:-}
os_admin

# The subnet's allocation pool is the floating IP pool: one single-address range per secondary private address of
# the provider ENI (each has its own Elastic IP). Without any, only the router's own address is in the pool.
pool_args=()
for ip in ${FLOATING_IPS:-$PROVIDER_ENI_IP}; do pool_args+=(--allocation-pool "start=$ip,end=$ip"); done
pool_want=$(for ip in ${FLOATING_IPS:-$PROVIDER_ENI_IP}; do echo "$ip-$ip"; done | sort | paste -sd ' ')

# --- Neutron objects (see steps/README.md "How the AWS network fix works" for the addresses)
os_ensure provider network --share --external --provider-physical-network provider \
    --provider-network-type flat >/dev/null
os_ensure provider-subnet subnet --network provider --subnet-range "$PROVIDER_CIDR" --gateway "$PUBLIC_IP" \
    --no-dhcp "${pool_args[@]}" >/dev/null
gw=$(openstack subnet show provider-subnet -f value -c gateway_ip)
if [[ "$gw" != "$PUBLIC_IP" ]]; then
    openstack subnet set --gateway "$PUBLIC_IP" provider-subnet
    mark_changed provider-subnet:gateway
    log "provider-subnet gateway set to $PUBLIC_IP"
fi
pool_have=$(openstack subnet show provider-subnet -f json -c allocation_pools |
    jq -r '.allocation_pools[] | "\(.start)-\(.end)"' | sort | paste -sd ' ')
if [[ "$pool_have" != "$pool_want" ]]; then
    openstack subnet set --no-allocation-pool "${pool_args[@]}" provider-subnet ||
        die "cannot set the allocation pool of provider-subnet to $pool_want (floating IPs in use outside it? 'openstack floating ip list')"
    mark_changed provider-subnet:allocation-pool
    log "provider-subnet allocation pool: ${pool_have:-none} -> $pool_want"
fi
os_ensure selfservice network --project demo >/dev/null
os_ensure selfservice-subnet subnet --project demo --network selfservice --subnet-range 172.16.1.0/24 \
    --gateway 172.16.1.1 --dns-nameserver "$VPC_DNS" >/dev/null
# Instances resolve through the VPC's resolver (DHCP hands it out); a subnet of an older install gets it too.
if ! openstack subnet show selfservice-subnet -f json -c dns_nameservers |
    jq -e --arg dns "$VPC_DNS" '.dns_nameservers | index($dns)' >/dev/null; then
    openstack subnet set --dns-nameserver "$VPC_DNS" selfservice-subnet
    mark_changed selfservice-subnet:dns
    log "selfservice-subnet: DNS server $VPC_DNS"
fi
router_id=$(os_ensure router router --project demo)
if ! openstack port list --router router --fixed-ip subnet=selfservice-subnet -f value -c ID | grep . >/dev/null; then
    openstack router add subnet router selfservice-subnet || die "cannot attach selfservice-subnet to the router"
    mark_changed router:interface
    log "router: interface on selfservice-subnet"
fi
if [[ "$(openstack router show router -f json -c external_gateway_info | jq -r '.external_gateway_info.network_id // empty')" == "" ]]; then
    openstack router set router --external-gateway provider \
        --fixed-ip "subnet=provider-subnet,ip-address=$PROVIDER_ENI_IP" || die "cannot set the router's gateway"
    mark_changed router:gateway
    log "router: gateway on provider ($PROVIDER_ENI_IP)"
fi
ns="qrouter-$router_id"
gw_port() { openstack port list --router router --device-owner network:router_gateway -f value -c ID | head -n1; }
wait_for "the router's gateway port" 60 bash -c "[[ -n \$(openstack port list --router router --device-owner network:router_gateway -f value -c ID) ]]"
port_id=$(gw_port)
qg="qg-${port_id:0:11}"
wait_for "namespace $ns with $qg (neutron-l3-agent)" 120 ip netns exec "$ns" ip link show "$qg"

probe_ping() { ip netns exec "$ns" ping -c 3 -W 2 "$PROBE_IP" >/dev/null 2>&1; }
gw_arp() { ip netns exec "$ns" ip neigh show "$PUBLIC_IP" dev "$qg" 2>/dev/null | awk '{print $NF}'; }

current_mac=$(openstack port show "$port_id" -f value -c mac_address)
if [[ "${current_mac,,}" != "$PROVIDER_MAC" ]]; then
    # Proof that the fix is needed: the VPC drops the router's frames (foreign MAC), so ARP never resolves.
    if probe_ping; then
        check_line network-fix-before fail "the router reached $PROBE_IP before the fix: the VPC lets foreign MACs through"
    else
        check_line network-fix-before ok "router cannot reach $PROBE_IP before the fix"
    fi
    arp=$(gw_arp || true)
    if [[ "$arp" =~ ^(REACHABLE|STALE|DELAY|PROBE|PERMANENT)$ ]]; then
        check_line network-fix-before-arp fail "ARP for $PUBLIC_IP resolved before the fix ($arp)"
    else
        check_line network-fix-before-arp ok "ARP for $PUBLIC_IP unresolved before the fix (${arp:-no entry})"
    fi
fi

# The provider network's Linux bridge (named by the agent after the network's id).
provider_net=$(os_id network provider)
brq="brq${provider_net:0:11}"

# --- PROVIDER_IF gets a stable locally administered MAC (derived from the ENI's), so the ENI's own MAC is free
# for the router's gateway port on the same bridge.
new_mac=$(printf '02:%s' "$(printf '%s' "$PROVIDER_MAC" | md5sum | cut -c1-10 | sed 's/../&:/g; s/:$//')")

# --- persistent host part: a oneshot unit re-applies it at boot before the Neutron agents start.
write_file /usr/local/sbin/openstack-aws-netfix 0755 <<EOF2
#!/bin/sh
# openstack-aws network fix (written by the network-fix step): host side of the router's path to the internet.
set -e
ip link set dev $PROVIDER_IF address $new_mac
ip link set dev $PROVIDER_IF up
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.conf.all.send_redirects=0
sysctl -qw net.ipv4.conf.$PUBLIC_IF.send_redirects=0
sysctl -qw net.ipv4.conf.$PUBLIC_IF.rp_filter=2
# Answer ARP only on the interface that holds the address: otherwise the provider bridge (brq...) answers the
# router's "who has $PUBLIC_IP" itself and the router's traffic enters the host on the bridge, where no
# policy route takes it to $PUBLIC_IF.
sysctl -qw net.ipv4.conf.all.arp_ignore=1
sysctl -qw net.ipv4.conf.default.arp_ignore=1
# Policy routing: what comes from PUBLIC_IP, or arrives on $PUBLIC_IF to be forwarded (the router's traffic),
# leaves by $PUBLIC_IF through subnet B's gateway (the VPC drops it on any other ENI).
ip route replace $PUBLIC_CIDR dev $PUBLIC_IF src $PUBLIC_IP table 200
ip route replace default via $PUBLIC_GW dev $PUBLIC_IF table 200
ip rule show | grep -q 'from $PUBLIC_IP lookup 200' || ip rule add from $PUBLIC_IP lookup 200 pref 1000
ip rule show | grep -q 'iif $PUBLIC_IF lookup 200' || ip rule add iif $PUBLIC_IF lookup 200 pref 1001
# Forwarded replies to subnet A that arrive on $PUBLIC_IF (management_egress=none: the controller masquerades
# subnet A out of $PUBLIC_IF) go back out of $MGMT_IF by the main table, not by table 200's default route.
ip rule show | grep -q 'to $MGMT_CIDR iif $PUBLIC_IF lookup main' || ip rule add iif $PUBLIC_IF to $MGMT_CIDR lookup main pref 999
# The router's packets cross the host twice: bridged in $brq (br_netfilter shows them to conntrack) and
# routed from $PUBLIC_IF. Untracked on the bridge, the routed pass opens the connection and gets MASQUERADE.
iptables -t raw -C PREROUTING -i $brq -j CT --notrack 2>/dev/null || iptables -t raw -I PREROUTING -i $brq -j CT --notrack
# Floating IPs keep their address: each has its own Elastic IP, which the internet gateway maps by private address
# (their replies come this way because the router's default route is $PUBLIC_IP). The chain is rebuilt from the
# facts every time, so a changed pool leaves no stale exemption.
iptables -t nat -N osa-floating 2>/dev/null || iptables -t nat -F osa-floating
for ip in $FLOATING_IPS; do iptables -t nat -A osa-floating -s "\$ip" -j ACCEPT; done
iptables -t nat -C POSTROUTING -o $PUBLIC_IF -j osa-floating 2>/dev/null || iptables -t nat -I POSTROUTING 1 -o $PUBLIC_IF -j osa-floating
# Everything else forwarded out of $PUBLIC_IF takes PUBLIC_IP's address, the one with the controller's Elastic IP.
iptables -t nat -C POSTROUTING -o $PUBLIC_IF -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -o $PUBLIC_IF -j MASQUERADE
EOF2
write_file /etc/systemd/system/openstack-aws-netfix.service 0644 <<EOF2
[Unit]
Description=openstack-aws network fix (provider MAC, forwarding, policy routing, MASQUERADE on $PUBLIC_IF)
Wants=network-online.target
After=network-online.target
Before=neutron-linuxbridge-agent.service neutron-l3-agent.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/openstack-aws-netfix

[Install]
WantedBy=multi-user.target
EOF2
if changed /etc/systemd/system/openstack-aws-netfix.service; then systemctl daemon-reload; fi
svc_apply "/usr/local/sbin/openstack-aws-netfix /etc/systemd/system/openstack-aws-netfix.service" openstack-aws-netfix
[[ "$(cat "/sys/class/net/$PROVIDER_IF/address")" == "$new_mac" ]] || die "$PROVIDER_IF did not take MAC $new_mac"

# cloud-init must not rewrite the interfaces (and undo the MAC) at the next boot.
mkdir -p /etc/cloud/cloud.cfg.d
write_file /etc/cloud/cloud.cfg.d/99-custom-networking.cfg 0644 <<<"network: {config: disabled}"

# --- the router's gateway port takes the ENI's MAC: Neutron API first (unbind, set, rebind), SQL as fallback.
current_mac=$(openstack port show "$port_id" -f value -c mac_address)
if [[ "${current_mac,,}" != "$PROVIDER_MAC" ]]; then
    host=$(openstack port show "$port_id" -f value -c binding_host_id)
    [[ -n "$host" ]] || host=$(hostname)
    log "router gateway port $port_id: MAC $current_mac -> $PROVIDER_MAC (unbind, set, rebind on $host)"
    mark_changed router:gateway-mac
    if ! OSA_PORT=$port_id OSA_MAC=$PROVIDER_MAC OSA_HOST=$host python3 - <<'PY'; then
import os, sys, openstack
conn = openstack.connect()
port = os.environ["OSA_PORT"]
conn.network.update_port(port, binding_host_id="")
try:
    conn.network.update_port(port, mac_address=os.environ["OSA_MAC"])
except openstack.exceptions.SDKException as exc:
    print(f"Neutron API: {exc}", file=sys.stderr)
    sys.exit(1)
finally:
    conn.network.update_port(port, binding_host_id=os.environ["OSA_HOST"])
PY
        warn "the Neutron API refused the MAC change of port $port_id; FALLBACK: updating neutron.ports directly"
        mysql_root neutron -e "UPDATE ports SET mac_address='$PROVIDER_MAC' WHERE id='$port_id'" ||
            die "neither the Neutron API nor SQL could set the MAC of port $port_id"
        systemctl restart neutron-l3-agent
    fi
fi
[[ "$(openstack port show "$port_id" -f value -c mac_address)" == "$PROVIDER_MAC" ]] ||
    die "port $port_id does not have MAC $PROVIDER_MAC"
qg_mac_ok() { [[ "$(ip netns exec "$ns" cat "/sys/class/net/$qg/address" 2>/dev/null)" == "$PROVIDER_MAC" ]]; }
if ! retry 10 2 qg_mac_ok; then
    warn "$qg in $ns still has its old MAC: setting it directly (the agent re-plugs it with the database's MAC later)"
    ip netns exec "$ns" ip link set dev "$qg" address "$PROVIDER_MAC"
fi

# The router may have cached an answer, and conntrack a connection, from before the fix: start afresh.
ip netns exec "$ns" ip neigh flush dev "$qg" 2>/dev/null || true
conntrack -D -s "$PROVIDER_ENI_IP" >/dev/null 2>&1 || true

# --- proof: ARP for the gateway resolves and the router namespace reaches the probe address.
if retry 20 3 probe_ping; then
    check_line network-fix-router-ping ok "ip netns exec $ns ping $PROBE_IP; ARP $PUBLIC_IP: $(gw_arp)"
else
    check_line network-fix-router-ping fail "router namespace $ns cannot reach $PROBE_IP; ARP $PUBLIC_IP: $(gw_arp || echo none)"
    die "the router cannot reach $PROBE_IP after the fix: check source/dest check on $PUBLIC_IF's ENI and 'iptables -t nat -S POSTROUTING'"
fi
log "network fix in place: router $PROVIDER_ENI_IP ($PROVIDER_MAC) -> $PUBLIC_IP ($PUBLIC_IF, MASQUERADE) -> $PUBLIC_GW; floating IP pool: ${FLOATING_IPS:-none}"

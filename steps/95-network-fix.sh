#!/usr/bin/env bash
# step: network-fix
# roles: controller
# after: neutron-controller, neutron-compute
# timeout: 1200
# inputs: the neutron steps' provider bridge br-provider (with the backhaul to the computes); node facts (MGMT_IF, MGMT_CIDR, PROVIDER_IF, PROVIDER_MAC, PROVIDER_ENI_IP, optional FLOATING_IPS (IMDS's current list wins), PUBLIC_IF, PUBLIC_IP, PUBLIC_GW, PUBLIC_CIDR), cluster facts (PROVIDER_CIDR, VPC_DNS, optional PROBE_IP), secrets ADMIN_PASS; the EC2 fix (source/dest check off on PUBLIC_IF's ENI) has run
# guarantees: external network provider (flat, physnet provider) with subnet PROVIDER_CIDR (gateway PUBLIC_IP, router address PROVIDER_ENI_IP, allocation pool FLOATING_IPS: the provider ENI's secondary addresses; DHCP on, from port provider-dhcp at PROVIDER_CIDR's base + 3, which AWS reserves and the pool never holds (device_id reserved_dhcp_port: the DHCP agent adopts it); DNS server VPC_DNS), self-service network selfservice 172.16.1.0/24 (DNS server VPC_DNS) and router "router" (project demo); every router port's gateway and floating addresses reach the VPC as the provider ENI (its MAC on the way out, the owning port's MAC on the way in: table bridge osa_provider at PROVIDER_IF in br-provider, map kept by openstack-aws-provider-owners.service from the routers' gateway ports and, for pool addresses only, the provider network's DHCP hosts file), so any project's router and floating IPs and instances on provider (on any compute, through the backhaul) work; DHCP and link-local destinations but Amazon Time Sync (IMDS) never leave PROVIDER_IF, and nothing sent to br-provider itself reaches the host or its routing; PROVIDER_IF has a locally administered MAC; forwarding, policy routing and MASQUERADE out PUBLIC_IF (not for FLOATING_IPS), and a filter that lets routers (sources PROVIDER_ENI_IP and FLOATING_IPS) reach only the internet and the VPC resolver, not the VPC, IMDS or the controller (chains osa-tenants, osa-tenants-in), persist across reboots (openstack-aws-netfix.service); cloud-init networking disabled; the router namespace reaches PROBE_IP
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars PROVIDER_IF PROVIDER_MAC PROVIDER_ENI_IP PUBLIC_IF PUBLIC_IP PUBLIC_GW PUBLIC_CIDR PROVIDER_CIDR VPC_DNS MGMT_CIDR
PROBE_IP=${PROBE_IP:-198.51.100.10}
PROVIDER_MAC=${PROVIDER_MAC,,}
FLOATING_IPS=${FLOATING_IPS:-}
# The pool is what the provider ENI holds now: a later deploy may have added secondary addresses since userdata
# wrote the facts at first boot.
if eni_ips=$(imds_get "network/interfaces/macs/$PROVIDER_MAC/local-ipv4s"); then
    FLOATING_IPS=$(tail -n +2 <<<"$eni_ips" | paste -sd ' ')
fi
# What tenants must not reach through the routers' gateway (the controller): the whole VPC (management plane,
# storage nodes, other ENIs), IMDS and the other link-local services. IMDS's answer, or the two subnets without it.
VPC_CIDR=$(imds_get "network/interfaces/macs/${MGMT_MAC:-none}/vpc-ipv4-cidr-block") || VPC_CIDR="$MGMT_CIDR $PROVIDER_CIDR"
apt_install nftables
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
# DHCP for instances attached to provider directly (steps/README.md "Instances on the provider network"). Its port
# is ours, made first at an address outside the pool, so the DHCP agent takes no floating address: the agent adopts
# a network:dhcp port whose device_id is reserved_dhcp_port (neutron/agent/linux/dhcp.py, _setup_reserved_dhcp_port)
# instead of making one. The address is the subnet's base + 3, which AWS reserves in every subnet: no ENI ever has
# it, and no address of the IP plan (stacks/config.py) is that low. Only the backhaul carries it; the VPC never
# needs to know it. Instances resolve through VPC_DNS, asking from their own pool address.
dhcp_ip=$(python3 -c 'import ipaddress, sys; print(ipaddress.ip_network(sys.argv[1])[3])' "$PROVIDER_CIDR")
read -r dhcp_port dhcp_have < <(openstack port list --network provider --device-owner network:dhcp -f json |
    jq -r --arg ip "$dhcp_ip" 'map({id: .ID, ips: (."Fixed IP Addresses" | map(.ip_address) | join(","))}) |
        sort_by(.ips != $ip) | .[0] // empty | "\(.id) \(.ips)"') || true
if [[ -z "${dhcp_port:-}" ]]; then
    openstack port create --network provider --device-owner network:dhcp --device reserved_dhcp_port \
        --fixed-ip "subnet=provider-subnet,ip-address=$dhcp_ip" provider-dhcp >/dev/null ||
        die "cannot reserve $dhcp_ip on provider for its DHCP port (in use? 'openstack port list --fixed-ip ip-address=$dhcp_ip')"
    mark_changed port:provider-dhcp
    log "provider's DHCP port reserved at $dhcp_ip"
elif [[ "$dhcp_have" != "$dhcp_ip" ]]; then
    openstack port set --no-fixed-ip --fixed-ip "subnet=provider-subnet,ip-address=$dhcp_ip" "$dhcp_port" ||
        die "cannot move provider's DHCP port $dhcp_port from $dhcp_have to $dhcp_ip"
    mark_changed port:provider-dhcp:address
    log "provider's DHCP port moved from $dhcp_have to $dhcp_ip (off the pool)"
fi
read -r dhcp_on dns_have < <(openstack subnet show provider-subnet -f json -c enable_dhcp -c dns_nameservers |
    jq -r '"\(.enable_dhcp) \(.dns_nameservers | join(","))"')
if [[ "$dhcp_on" != true || "$dns_have" != "$VPC_DNS" ]]; then
    openstack subnet set --dhcp --no-dns-nameservers --dns-nameserver "$VPC_DNS" provider-subnet
    mark_changed provider-subnet:dhcp
    log "provider-subnet: DHCP on (port $dhcp_ip), DNS server $VPC_DNS"
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

if ! nft list table bridge osa_provider >/dev/null 2>&1; then
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

# The provider network's Linux bridge (the neutron steps' br-provider: PROVIDER_IF and the backhaul to the computes).
[[ -d "/sys/class/net/$PROVIDER_BRIDGE/bridge" ]] ||
    die "bridge $PROVIDER_BRIDGE is missing: run neutron-controller and neutron-compute again (this release's backhaul)"
provider_net=$(os_id network provider)
# The NOTRACK rule of an install before br-provider named the agent's brq<network> (gone since).
while iptables -t raw -D PREROUTING -i "brq${provider_net:0:11}" -j CT --notrack 2>/dev/null; do
    mark_changed iptables:notrack:brq
done

# --- PROVIDER_IF gets a stable locally administered MAC (derived from the ENI's): the bridge must forward frames
# for the ENI's MAC to router ports, never take them itself (and a router port of an install before the MAC
# translation may still hold the ENI's MAC).
new_mac=$(printf '02:%s' "$(printf '%s' "$PROVIDER_MAC" | md5sum | cut -c1-10 | sed 's/../&:/g; s/:$//')")

# --- persistent host part: a oneshot unit re-applies it at boot before the Neutron agents start.
write_file /usr/local/sbin/openstack-aws-netfix 0755 <<EOF2
#!/bin/sh
# openstack-aws network fix (written by the network-fix step): host side of the router's path to the internet.
set -e
ip link set dev $PROVIDER_IF address $new_mac
ip link set dev $PROVIDER_IF up
# Router ports on the provider bridge speak to the VPC as the provider ENI (see provider-bridge.nft).
nft -f /usr/local/lib/openstack-aws/provider-bridge.nft
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.conf.all.send_redirects=0
sysctl -qw net.ipv4.conf.$PUBLIC_IF.send_redirects=0
sysctl -qw net.ipv4.conf.$PUBLIC_IF.rp_filter=2
# Answer ARP only on the interface that holds the address: otherwise the provider bridge ($PROVIDER_BRIDGE) answers
# the router's "who has $PUBLIC_IP" itself and the router's traffic enters the host on the bridge, where no
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
# The router's packets cross the host twice: bridged in $PROVIDER_BRIDGE (br_netfilter shows them to conntrack) and
# routed from $PUBLIC_IF. Untracked on the bridge, the routed pass opens the connection and gets MASQUERADE.
iptables -t raw -C PREROUTING -i $PROVIDER_BRIDGE -j CT --notrack 2>/dev/null || iptables -t raw -I PREROUTING -i $PROVIDER_BRIDGE -j CT --notrack
# Floating IPs keep their address: each has its own Elastic IP, which the internet gateway maps by private address
# (their replies come this way because the router's default route is $PUBLIC_IP). The chain is rebuilt from the
# facts every time, so a changed pool leaves no stale exemption.
iptables -t nat -N osa-floating 2>/dev/null || iptables -t nat -F osa-floating
for ip in $FLOATING_IPS; do iptables -t nat -A osa-floating -s "\$ip" -j ACCEPT; done
iptables -t nat -C POSTROUTING -o $PUBLIC_IF -j osa-floating 2>/dev/null || iptables -t nat -I POSTROUTING 1 -o $PUBLIC_IF -j osa-floating
# Everything else forwarded out of $PUBLIC_IF takes PUBLIC_IP's address, the one with the controller's Elastic IP.
iptables -t nat -C POSTROUTING -o $PUBLIC_IF -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -o $PUBLIC_IF -j MASQUERADE
# Tenants are kept out of the management plane. Everything a router sends (instances behind it are SNATed or
# floating, so its source is always a provider address) reaches the controller on $PUBLIC_IF: it may go to the
# internet and ask the VPC resolver, and nothing else inside the VPC, IMDS included, nor the controller itself
# (MariaDB, RabbitMQ, memcached, the APIs on the management side). Replies to routers come from other sources and
# pass. Rebuilt from the facts every time, like osa-floating.
iptables -N osa-tenants 2>/dev/null || iptables -F osa-tenants
iptables -A osa-tenants -d $VPC_DNS -p udp --dport 53 -j RETURN
iptables -A osa-tenants -d $VPC_DNS -p tcp --dport 53 -j RETURN
iptables -A osa-tenants -d 169.254.169.123 -p udp --dport 123 -j RETURN  # Amazon Time Sync, as on any instance
for net in $VPC_CIDR 169.254.0.0/16; do iptables -A osa-tenants -d "\$net" -j DROP; done
iptables -N osa-tenants-in 2>/dev/null || iptables -F osa-tenants-in
iptables -A osa-tenants-in -p icmp -j RETURN
iptables -A osa-tenants-in -j DROP
for ip in $PROVIDER_ENI_IP $FLOATING_IPS; do
    iptables -C FORWARD -i $PUBLIC_IF -s "\$ip" -j osa-tenants 2>/dev/null || iptables -I FORWARD 1 -i $PUBLIC_IF -s "\$ip" -j osa-tenants
    iptables -C INPUT -i $PUBLIC_IF -s "\$ip" -j osa-tenants-in 2>/dev/null || iptables -I INPUT 1 -i $PUBLIC_IF -s "\$ip" -j osa-tenants-in
done
# Instances on provider share $PROVIDER_BRIDGE with the routers (the backhaul). The bridge holds no address, but Linux
# takes a packet sent to the bridge's own MAC for any local address (MariaDB on the management address...) and
# routes others: neither, from the bridge. Bridged frames (routers, instances, DHCP) pass as before.
iptables -C INPUT -i $PROVIDER_BRIDGE -j DROP 2>/dev/null || iptables -I INPUT 1 -i $PROVIDER_BRIDGE -j DROP
iptables -C FORWARD -i $PROVIDER_BRIDGE -m physdev ! --physdev-is-bridged -j DROP 2>/dev/null ||
    iptables -I FORWARD 1 -i $PROVIDER_BRIDGE -m physdev ! --physdev-is-bridged -j DROP
EOF2
# The VPC knows one MAC on the provider ENI and only the ENI's addresses (primary and secondaries). Every router
# port keeps its own Neutron MAC; the bridge translates at PROVIDER_IF: frames leaving take the ENI's MAC (also as
# ARP's sender), frames for the ENI's MAC go to the port that holds the destination address (map "owner").
mkdir -p /usr/local/lib/openstack-aws
write_file /usr/local/lib/openstack-aws/provider-bridge.nft 0644 <<EOF2
# openstack-aws network fix (written by the network-fix step): MAC translation at the provider ENI ($PROVIDER_IF).
table bridge osa_provider
delete table bridge osa_provider
table bridge osa_provider {
    # gateway and floating address -> MAC of the router port holding it (openstack-aws-provider-owners fills it)
    map owner {
        type ipv4_addr : ether_addr
    }
    chain from_vpc {
        type filter hook prerouting priority -200; policy accept;
        iifname "$PROVIDER_IF" ether daddr $PROVIDER_MAC ether type arp arp daddr ether set arp daddr ip map @owner ether daddr set arp daddr ip map @owner accept
        iifname "$PROVIDER_IF" ether daddr $PROVIDER_MAC ether type ip ether daddr set ip daddr map @owner accept
        iifname "$PROVIDER_IF" ether daddr $PROVIDER_MAC counter drop comment "no router port holds the address"
    }
    chain to_vpc {
        type filter hook postrouting priority 300; policy accept;
        oifname "$PROVIDER_IF" ether type != { ip, arp } counter drop comment "subnet B carries IPv4 and ARP only"
        oifname "$PROVIDER_IF" udp dport { 67, 68 } counter drop comment "DHCP stays on the provider network"
        oifname "$PROVIDER_IF" ip daddr 169.254.0.0/16 ip daddr != 169.254.169.123 counter drop comment "IMDS is the controller's"
        oifname "$PROVIDER_IF" ether type arp arp saddr ether set $PROVIDER_MAC
        oifname "$PROVIDER_IF" ether saddr set $PROVIDER_MAC
    }
}
EOF2
write_file /usr/local/sbin/openstack-aws-provider-owners 0755 <<'EOF2'
#!/bin/bash
# openstack-aws network fix (written by the network-fix step): keeps map "owner" of table bridge osa_provider equal
# to the addresses the router namespaces hold on their gateway (qg-) ports, with each port's MAC, and to the pool
# addresses the provider network's DHCP hosts file gives an instance there, with its MAC.
#   openstack-aws-provider-owners HOSTS_FILE POOL_ADDRESS...
# The l3 agent adds and removes gateway and floating addresses at any time, and the DHCP agent rewrites its hosts file
# for every port: this polls both (cheap: no API call).
set -euo pipefail
hosts=$1
shift
pool=" $* "
owners() {
    local ns dev addr mac rest field
    for ns in $(ip netns list | awk '/^qrouter-/ {print $1}'); do
        { ip -n "$ns" -o -4 addr show 2>/dev/null || true; } | awk '$2 ~ /^qg-/ {split($4, a, "/"); print $2, a[1]}' |
            while read -r dev addr; do
                mac=$({ ip -n "$ns" -o link show dev "$dev" 2>/dev/null || true; } |
                    grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
                [[ -z "$mac" ]] || echo "$addr $mac"
            done
    done
    # Lines "MAC,[TAG,]NAME,ADDRESS[,set:TAG]" (neutron/agent/linux/dhcp.py, _output_hosts_file). Only the pool's
    # addresses: the VPC delivers no other to the provider ENI, and floating IPs are not in the file.
    { cat "$hosts" 2>/dev/null || true; } | while IFS=, read -r mac rest; do
        for field in ${rest//,/ }; do [[ "$pool" != *" $field "* ]] || echo "$field $mac"; done
    done
}
last="(none yet)"
while :; do
    # a gateway port (listed first) wins over the hosts file where both name an address
    now=$(owners | awk '!seen[$1]++ {print $1 " : " $2}' | sort | paste -sd, -)
    if [[ "$now" != "$last" ]]; then
        if { echo "flush map bridge osa_provider owner"
             [[ -z "$now" ]] || echo "add element bridge osa_provider owner { $now }"; } | nft -f -; then
            echo "provider addresses: ${now:-none}"
            last=$now
        fi
    fi
    sleep 2
done
EOF2
write_file /etc/systemd/system/openstack-aws-netfix.service 0644 <<EOF2
[Unit]
Description=openstack-aws network fix (provider MAC, forwarding, policy routing, MASQUERADE on $PUBLIC_IF)
Wants=network-online.target
After=network-online.target
Before=neutron-linuxbridge-agent.service neutron-openvswitch-agent.service neutron-l3-agent.service
Wants=openstack-aws-provider-owners.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/openstack-aws-netfix

[Install]
WantedBy=multi-user.target
EOF2
write_file /etc/systemd/system/openstack-aws-provider-owners.service 0644 <<EOF2
[Unit]
Description=openstack-aws provider bridge: the ports holding pool addresses and their MACs (map owner)
After=openstack-aws-netfix.service
# A reload of the netfix table empties the map: start afresh with it.
PartOf=openstack-aws-netfix.service

[Service]
ExecStart=/usr/local/sbin/openstack-aws-provider-owners /var/lib/neutron/dhcp/$provider_net/host $FLOATING_IPS
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
EOF2
units=(/etc/systemd/system/openstack-aws-netfix.service /etc/systemd/system/openstack-aws-provider-owners.service)
if changed "${units[@]}"; then systemctl daemon-reload; fi
svc_apply "/usr/local/sbin/openstack-aws-netfix /usr/local/lib/openstack-aws/provider-bridge.nft ${units[0]}" \
    openstack-aws-netfix
svc_apply "/usr/local/sbin/openstack-aws-provider-owners ${units[1]}" openstack-aws-provider-owners
[[ "$(cat "/sys/class/net/$PROVIDER_IF/address")" == "$new_mac" ]] || die "$PROVIDER_IF did not take MAC $new_mac"

# cloud-init must not rewrite the interfaces (and undo the MAC) at the next boot.
mkdir -p /etc/cloud/cloud.cfg.d
write_file /etc/cloud/cloud.cfg.d/99-custom-networking.cfg 0644 <<<"network: {config: disabled}"

# The router's gateway address must be in the map before the router can be answered.
owned() { nft list map bridge osa_provider owner 2>/dev/null | grep -F "$1 : " >/dev/null; }
wait_for "$PROVIDER_ENI_IP in the provider bridge's map (openstack-aws-provider-owners)" 60 owned "$PROVIDER_ENI_IP"

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
log "network fix in place: router $PROVIDER_ENI_IP (as $PROVIDER_MAC) -> $PUBLIC_IP ($PUBLIC_IF, MASQUERADE) -> $PUBLIC_GW; floating IP pool: ${FLOATING_IPS:-none}"

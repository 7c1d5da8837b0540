#!/usr/bin/env bash
# steps/lib/optional/neutron.sh: what neutron-controller and neutron-compute share (`# uses: service, neutron`: it
# calls service's functions): neutron.conf's common settings, the linuxbridge agent's configuration and the
# provider network's backhaul. Only function definitions (see common.sh).

# neutron_conf_common: neutron.conf settings shared by the server and the agents' nodes.
neutron_conf_common() {
    local conf=/etc/neutron/neutron.conf
    ini_common "$conf" neutron
    ini_authtoken "$conf" neutron "$NEUTRON_PASS"
    # Debian's neutron 21 marks linuxbridge experimental: server and agents refuse it unless enabled.
    if [[ "$(neutron_backend)" == linuxbridge ]]; then ini_set "$conf" experimental linuxbridge true; fi
}

# neutron_agent: the layer 2 agent's service and configuration file.
neutron_agent() {
    if [[ "$(neutron_backend)" == linuxbridge ]]; then
        echo neutron-linuxbridge-agent /etc/neutron/plugins/ml2/linuxbridge_agent.ini
    else
        echo neutron-openvswitch-agent /etc/neutron/plugins/ml2/openvswitch_agent.ini
    fi
}

# ovs_datapath_type: the datapath the datapath step chose for OVS_PROVIDER_BRIDGE (system or netdev).
ovs_datapath_type() { ovs-vsctl get bridge "$OVS_PROVIDER_BRIDGE" datapath_type; }

# ovs_agent_conf DATAPATH: the openvswitch agent: physnet provider on OVS_PROVIDER_BRIDGE (the backhaul links it to
# the provider network), VXLAN from MGMT_IP on DATAPATH (ovs_datapath_type), security groups in iptables on a Linux
# bridge per port (iptables_hybrid: the linuxbridge agent's filtering).
ovs_agent_conf() {
    ini_merge /etc/neutron/plugins/ml2/openvswitch_agent.ini root:neutron <<EOF2
[ovs]
bridge_mappings = provider:$OVS_PROVIDER_BRIDGE
local_ip = $MGMT_IP
datapath_type = $1
[agent]
tunnel_types = vxlan
l2_population = true
[securitygroup]
enable_security_group = true
firewall_driver = iptables_hybrid
EOF2
}

# linuxbridge_conf KIND TARGET: the linuxbridge agent: physnet provider on TARGET (KIND physical_interface_mappings:
# an interface, the agent bridges it per network; bridge_mappings: a bridge of ours), VXLAN from MGMT_IP, security
# groups through iptables. The other kind goes: the agent refuses a physnet mapped twice (an earlier release
# mapped PROVIDER_IF on every node).
linuxbridge_conf() {
    local file=/etc/neutron/plugins/ml2/linuxbridge_agent.ini kind
    ini_merge "$file" root:neutron <<EOF2
[linux_bridge]
$1 = provider:$2
[vxlan]
enable_vxlan = true
local_ip = $MGMT_IP
l2_population = true
[securitygroup]
enable_security_group = true
firewall_driver = neutron.agent.linux.iptables_firewall.IptablesFirewallDriver
EOF2
    for kind in physical_interface_mappings bridge_mappings; do
        [[ "$kind" == "$1" ]] || ini_del "$file" linux_bridge "$kind"
    done
}

# The provider network's backhaul (steps/README.md "Instances on the provider network"): the VPC delivers subnet B's
# pool addresses only to the controller's provider ENI, so the provider network's layer 2 reaches the other nodes
# through this VXLAN device over the management network, never through their own provider ENIs.
PROVIDER_BACKHAUL=osa-provider

# provider_backhaul [BRIDGE [OVS_BRIDGE]]: the backhaul device, created now and at every boot before the agent
# (openstack-aws-provider-backhaul.service); with BRIDGE (the controller) also that bridge, holding PROVIDER_IF and
# the backhaul; with OVS_BRIDGE the openvswitch agent's physnet bridge, joined to them. The node list is re-read
# from the facts at each run: a deploy that adds computes converges here.
provider_backhaul() {
    local script=/usr/local/sbin/openstack-aws-provider-backhaul
    local unit=/etc/systemd/system/openstack-aws-provider-backhaul.service master out
    local args="$PROVIDER_BACKHAUL${1:+ $1}"
    [[ -z "${2:-}" ]] || args="$PROVIDER_BACKHAUL ${1:-\"\"} $2"  # systemd's empty argument
    write_file /usr/local/sbin/openstack-aws-provider-backhaul 0755 <<'EOF2'
#!/bin/bash
# openstack-aws (written by the neutron steps, steps/lib/optional/neutron.sh): the provider network's backhaul.
#   openstack-aws-provider-backhaul DEVICE [BRIDGE [OVS_BRIDGE]]
# DEVICE: VXLAN over the management network, flooding to every other node of CONTROLLER_IP and COMPUTE_IPS
# (head-end replication: the VPC has no multicast) and learning where each MAC is. BRIDGE (the controller): holds
# PROVIDER_IF and DEVICE; the linuxbridge agent maps physnet provider to it. OVS_BRIDGE (the openvswitch agent's
# physnet bridge): holds DEVICE, or a veth pair's end whose other end is in BRIDGE. Prints one line per change.
set -euo pipefail
export LC_ALL=C  # comm and sort agree on the order
dev=$1 bridge=${2:-} ovs=${3:-} lb=osa-prov-lb
etc=${OSA_ETC:-/etc/openstack-aws}
for f in "$etc/node.env" "$etc/cluster.env" "$etc/override.env"; do
    # shellcheck disable=SC1090
    [[ ! -r $f ]] || . "$f"
done
# No Neutron network uses this pair: its VXLAN networks take VNIs 1-1000 on the kernel's port (8472). MTU 1500:
# the provider network's; the management network carries the 50 bytes more (9001 on AWS).
vni=1001 port=4790 any=00:00:00:00:00:00
master_of() { local m; m=$(readlink "/sys/class/net/$1/master" || true); echo "${m##*/}"; }
# No IPv6 on these devices (Neutron does the same for its VXLAN ones): the host is not to be reached from the
# provider network (sshd listens on every address), nor to speak there.
no_ipv6() { [[ ! -w /proc/sys/net/ipv6/conf/$1/disable_ipv6 ]] || echo 1 >"/proc/sys/net/ipv6/conf/$1/disable_ipv6"; }
have=$(ip -d -o link show dev "$dev" 2>/dev/null || true)
was=$(master_of "$dev")
if [[ -n $have && ($have != *" mtu 1500 "* || $have != *" vxlan id $vni local $MGMT_IP "* ||
    $have != *" dstport $port "* || $have == *nolearning*) ]]; then
    ip link del dev "$dev"
    have=
fi
if [[ -z $have ]]; then
    # The address may come later (DHCP): the device needs it only to send.
    ip link add "$dev" mtu 1500 type vxlan id "$vni" local "$MGMT_IP" dstport "$port" learning
    echo "$dev: VXLAN $vni from $MGMT_IP, UDP port $port"
    # a bridge that held the device before (the agent's brq… on a compute) gets it back
    [[ -n $bridge || -z $was ]] || { ip link set dev "$dev" master "$was"; echo "$dev: back in $was"; }
fi
no_ipv6 "$dev"
peers=$(for ip in $CONTROLLER_IP ${COMPUTE_IPS:-}; do [[ $ip == "$MGMT_IP" ]] || echo "$ip"; done | sort -u)
flooded=$(bridge fdb show dev "$dev" | awk -v a=$any '$1 == a && $2 == "dst" {print $3}' | sort -u)
for ip in $(comm -13 <(echo "$flooded") <(echo "$peers")); do
    bridge fdb append $any dev "$dev" dst "$ip"
    echo "$dev: floods to $ip"
done
for ip in $(comm -23 <(echo "$flooded") <(echo "$peers")); do
    bridge fdb del $any dev "$dev" dst "$ip"
    echo "$dev: no longer floods to $ip (not a node any more)"
done
if [[ -n $bridge ]]; then
    if [[ ! -d /sys/class/net/$bridge/bridge ]]; then
        ip link add "$bridge" type bridge forward_delay 0
        echo "$bridge: created"
    fi
    no_ipv6 "$bridge"
    # An install before the backhaul had PROVIDER_IF in the agent's brq<network>, with the routers' and DHCP's
    # taps: the agent adds a tap only when it is in no bridge, so all of them move here and the old bridge goes.
    # PROVIDER_IF moves last: a run killed half-way finds it still there and moves the rest.
    old=$(master_of "$PROVIDER_IF")
    if [[ -n $old && $old != "$bridge" ]]; then
        for port in "/sys/class/net/$old/brif/"*; do
            [[ ! -e $port || ${port##*/} == "$PROVIDER_IF" ]] || ip link set dev "${port##*/}" master "$bridge"
        done
        # The network fix's NOTRACK rule for routed router traffic named the old bridge: it moves with the ports,
        # so SNAT keeps working until network-fix runs again (which writes its own for this bridge).
        if iptables -t raw -C PREROUTING -i "$old" -j CT --notrack 2>/dev/null; then
            iptables -t raw -C PREROUTING -i "$bridge" -j CT --notrack 2>/dev/null ||
                iptables -t raw -I PREROUTING -i "$bridge" -j CT --notrack
            iptables -t raw -D PREROUTING -i "$old" -j CT --notrack
            echo "$bridge: the network fix's NOTRACK rule moved here from $old"
        fi
        ip link set dev "$PROVIDER_IF" master "$bridge"
        ip link del dev "$old"
        echo "$bridge: took $old's ports ($PROVIDER_IF and the taps), $old deleted"
    fi
    if [[ -n $ovs && ! -e /sys/class/net/$lb ]]; then
        ip link add "$lb" mtu 1500 type veth peer name osa-prov-ovs mtu 1500
        echo "$lb: veth to osa-prov-ovs ($ovs)"
    fi
    for port in "$PROVIDER_IF" "$dev" ${ovs:+"$lb"}; do
        [[ $(master_of "$port") == "$bridge" ]] && continue
        ip link set dev "$port" master "$bridge"
        echo "$bridge: $port added"
    done
    ip link set dev "$PROVIDER_IF" up
    ip link set dev "$bridge" up
elif [[ -n ${PROVIDER_IF:-} && -n $(master_of "$PROVIDER_IF") ]]; then
    # a compute's own provider ENI carries nothing now (the VPC would drop its instances' frames)
    echo "$PROVIDER_IF: out of $(master_of "$PROVIDER_IF") (the provider network rides $dev)"
    ip link set dev "$PROVIDER_IF" nomaster
fi
ip link set dev "$dev" up
if [[ -n $ovs ]]; then
    port=$dev
    [[ -z $bridge ]] || port=osa-prov-ovs
    datapath=$(ovs-vsctl get bridge "$ovs" datapath_type)
    for i in "$port" ${bridge:+"$lb"}; do
        ip link set dev "$i" up
        # vswitchd's userspace datapath computes no checksums a veth left to it (Neutron's ovs_use_veth does the same)
        [[ $datapath != netdev ]] || ethtool -K "$i" tx off >/dev/null 2>&1 || true
    done
    if ! ovs-vsctl list-ports "$ovs" | grep -qx "$port"; then
        ovs-vsctl add-port "$ovs" "$port"
        echo "$ovs: $port added"
    fi
fi
EOF2
    write_file /etc/systemd/system/openstack-aws-provider-backhaul.service 0644 <<EOF2
[Unit]
Description=openstack-aws provider backhaul ($PROVIDER_BACKHAUL${1:+ in $1}) over the management network
Wants=network-online.target
After=network-online.target
After=openvswitch-switch.service
Before=neutron-linuxbridge-agent.service neutron-openvswitch-agent.service
# network-online: PROVIDER_IF has its name; the management address may still come later (the device needs it only
# to send, like a service bound with ip_nonlocal_bind).

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=$script $args

[Install]
WantedBy=multi-user.target
EOF2
    if changed "$unit"; then systemctl daemon-reload; fi
    # An agent still running with PROVIDER_IF mapped would take it back into its brq<network>: stopped until it
    # restarts with the new mapping (the step's svc_apply).
    master=$(readlink "/sys/class/net/$PROVIDER_IF/master" || true)
    if [[ -n "$master" && "${master##*/}" != "${1:-}" ]] && systemctl is-active -q neutron-linuxbridge-agent; then
        log "stopping neutron-linuxbridge-agent: $PROVIDER_IF is still in its ${master##*/}"
        systemctl stop neutron-linuxbridge-agent
        mark_changed stopped:neutron-linuxbridge-agent
    fi
    svc_apply "$script $unit" openstack-aws-provider-backhaul
    out=$("$script" $PROVIDER_BACKHAUL "${1:-}" ${2:+"$2"}) || die "$script failed (output above)"
    if [[ -n "$out" ]]; then
        mark_changed provider-backhaul
        log "provider backhaul: ${out//$'\n'/; }"
    fi
}

#!/usr/bin/env bash
# steps/lib/optional/ovs.sh: Open vSwitch under Neutron's openvswitch backend (the datapath step; Debian 13's
# Neutron 2025.1 has no linuxbridge driver, see docs/epoxy-trixie-plan.md). Only function definitions (see common.sh).
# shellcheck disable=SC2034  # variables set here are used by the steps

# ovs_datapath: system where the kernel has Open vSwitch (EC2's cloud kernel ships openvswitch.ko), netdev
# (ovs-vswitchd forwards in userspace, through AF_PACKET and TAP devices) where it has none, such as a container on a
# kernel built without it.
ovs_datapath() {
    if [[ -d /sys/module/openvswitch ]] || modprobe -q openvswitch 2>/dev/null; then echo system; else echo netdev; fi
}

# netdev only: the bridge holding MGMT_IF and the management address (ovs_mgmt_underlay).
OVS_MGMT_BRIDGE="br-mgmt"

# ovs_bridge NAME DATAPATH: the bridge exists with that datapath.
ovs_bridge() {
    if ! ovs-vsctl br-exists "$1"; then
        ovs-vsctl add-br "$1" -- set bridge "$1" datapath_type="$2"
        mark_changed "ovs:$1"
        log "OVS bridge $1 ($2 datapath)"
    elif [[ "$(ovs-vsctl get bridge "$1" datapath_type)" != "$2" ]]; then
        ovs-vsctl set bridge "$1" datapath_type="$2"
        mark_changed "ovs:$1:datapath"
    fi
}

# ovs_mgmt_underlay: with the netdev datapath, VXLAN leaves only through an OVS bridge that holds the tunnel's
# source address ("native tunnel routing failed" otherwise; docs/epoxy-trixie-plan.md 4.2): MGMT_IF becomes a port
# of br-mgmt, which takes MGMT_IF's MAC (the one the VPC accepts on the ENI), MTU and address, now and at every boot
# (networkd files that come before userdata's 05-osa-mgmt0.network). The system datapath tunnels through the
# kernel's routing and leaves MGMT_IF as it is.
ovs_mgmt_underlay() {
    local br=$OVS_MGMT_BRIDGE mtu dir=/etc/systemd/network
    mtu=$(cat "/sys/class/net/$MGMT_IF/mtu")
    ovs_bridge "$br" netdev
    ovs-vsctl set bridge "$br" other_config:hwaddr="$MGMT_MAC" -- set interface "$br" mtu_request="$mtu"
    write_file "$dir/04-osa-mgmt-port.network" 0644 <<EOF
# openstack-aws (datapath step): $MGMT_IF is a port of OVS bridge $br, which holds the management address.
[Match]
Name=$MGMT_IF
[Link]
RequiredForOnline=no
[Network]
LinkLocalAddressing=no
IPv6AcceptRA=no
ConfigureWithoutCarrier=yes
EOF
    write_file "$dir/04-osa-mgmt-bridge.network" 0644 <<EOF
# openstack-aws (datapath step): the management address on $br (userspace datapath: steps/lib/optional/ovs.sh).
[Match]
Name=$br
[Link]
MTUBytes=$mtu
[Network]
Address=$MGMT_IP/${MGMT_CIDR#*/}
Gateway=$MGMT_GW
LinkLocalAddressing=no
IPv6AcceptRA=no
ConfigureWithoutCarrier=yes
EOF
    # vswitchd reads MGMT_IF through AF_PACKET, ahead of the kernel's own receive path, which would also take what
    # arrives there for a local address (Linux accepts it on any interface): every packet twice (ping: DUP!). The
    # kernel drops all of it at ingress, after vswitchd's copy; the unit does it again at every boot.
    mkdir -p /usr/local/lib/openstack-aws
    write_file /usr/local/lib/openstack-aws/ovs-underlay.nft 0644 <<EOF
# openstack-aws (datapath step): $MGMT_IF belongs to OVS bridge $br; the host speaks through $br only.
table netdev osa_ovs_underlay
delete table netdev osa_ovs_underlay
table netdev osa_ovs_underlay {
    chain ingress { type filter hook ingress device "$MGMT_IF" priority 0; policy drop; }
}
EOF
    write_file /etc/systemd/system/openstack-aws-ovs-underlay.service 0644 <<EOF
[Unit]
Description=openstack-aws: $MGMT_IF carries OVS bridge $br only
# Early boot, before networking: with the default dependencies (after sysinit.target) it closed an ordering cycle
# through network-pre.target, networkd and cloud-init's network stage (before sysinit.target), and systemd
# dropped cloud-init's network stage at the next boot: cloud-init never finished.
DefaultDependencies=no
After=local-fs.target
Wants=network-pre.target
Before=network-pre.target openvswitch-switch.service shutdown.target
Conflicts=shutdown.target
# The chain needs the device, which has its name once udev (or the rig's stand-in) renamed it: waited for here.

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for i in \$(seq 600); do [ -e /sys/class/net/$MGMT_IF ] && exec nft -f /usr/local/lib/openstack-aws/ovs-underlay.nft; sleep 0.1; done; exit 1'

[Install]
WantedBy=multi-user.target
EOF
    if changed /etc/systemd/system/openstack-aws-ovs-underlay.service; then systemctl daemon-reload; fi
    svc_apply /usr/local/lib/openstack-aws/ovs-underlay.nft openstack-aws-ovs-underlay
    if ! ovs-vsctl list-ports "$br" | grep -qx "$MGMT_IF"; then
        ovs-vsctl add-port "$br" "$MGMT_IF"
        mark_changed "ovs:$br:$MGMT_IF"
    fi
    if changed "$dir/04-osa-mgmt-port.network" "$dir/04-osa-mgmt-bridge.network" "ovs:$br:$MGMT_IF"; then
        networkctl reload
        ip -4 addr flush dev "$MGMT_IF" scope global
    fi
    has_mgmt_ip() { ip -4 -o addr show dev "$br" | grep -q " $MGMT_IP/"; }
    wait_for "$MGMT_IP on $br" 60 has_mgmt_ip
    # vswitchd's tunnel neighbour cache may hold what it learned before the address moved
    ovs-appctl tnl/neigh/flush >/dev/null
}

# ovs_port_checksums: with the netdev datapath, every port Nova's os-vif plugs (the hybrid plug's qvb/qvo veths, the
# instance's tap) gets tx checksumming off, now and as they appear. vswitchd forwards a packet whose checksum a
# veth or tap left for later (CHECKSUM_PARTIAL) unfinished, and the receiver drops it: an instance's DNS queries
# never reached dnsmasq while its pings passed. Off at the sending device, the kernel finishes it first. (Neutron
# does the same for its namespace ends; the backhaul script for its veth.)
ovs_port_checksums() {
    write_file /usr/local/sbin/openstack-aws-ovs-checksums 0755 <<'EOF2'
#!/bin/bash
# openstack-aws (written by the datapath step, steps/lib/optional/ovs.sh): tx checksumming off on instance ports.
set -u
tx_csum_off() { case $1 in qvb* | qvo* | tap*) ethtool -K "$1" tx off >/dev/null 2>&1 || true ;; esac; }
for dev in /sys/class/net/*; do tx_csum_off "${dev##*/}"; done
ip -o monitor link | while read -r _ dev _; do tx_csum_off "${dev%%[@:]*}"; done
EOF2
    write_file /etc/systemd/system/openstack-aws-ovs-checksums.service 0644 <<'EOF2'
[Unit]
Description=openstack-aws: instance ports of the userspace Open vSwitch datapath finish their checksums
After=openvswitch-switch.service

[Service]
ExecStart=/usr/local/sbin/openstack-aws-ovs-checksums
Restart=always

[Install]
WantedBy=multi-user.target
EOF2
    if changed /etc/systemd/system/openstack-aws-ovs-checksums.service; then systemctl daemon-reload; fi
    svc_apply "/usr/local/sbin/openstack-aws-ovs-checksums /etc/systemd/system/openstack-aws-ovs-checksums.service" \
        openstack-aws-ovs-checksums
}

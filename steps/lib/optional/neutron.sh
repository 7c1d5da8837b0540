#!/usr/bin/env bash
# steps/lib/optional/neutron.sh: what neutron-controller and neutron-compute share (`# uses: service, neutron`: it
# calls service's functions): neutron.conf's common settings and the linuxbridge agent's configuration. Only
# function definitions (see common.sh).

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

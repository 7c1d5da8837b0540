#!/usr/bin/env bash
# steps/lib/optional/nova.sh: nova.conf's settings shared by nova-controller and nova-compute (`# uses: service, nova`:
# it calls service's functions). Only function definitions (see common.sh).

# nova_conf_common: the nova.conf settings of both the controller and compute nodes (secrets NOVA_PASS,
# PLACEMENT_PASS, NEUTRON_PASS and RABBIT_PASS loaded).
nova_conf_common() {
    local conf=/etc/nova/nova.conf
    # Consoles are VNC (noVNC on the Elastic IP). Debian 13's nova.conf turns spice on, which its QEMU cannot do
    # without qemu-system-modules-spice: every build failed ("spice graphics are not supported with this QEMU").
    ini_merge "$conf" root:nova <<EOF2
[DEFAULT]
my_ip = $MGMT_IP
[api]
auth_strategy = keystone
[glance]
api_servers = $(internal_url :9292)
[vnc]
enabled = true
novncproxy_base_url = $(public_url :6080/vnc_auto.html)
server_listen = \$my_ip
server_proxyclient_address = \$my_ip
[spice]
enabled = false
[cinder]
catalog_info = volumev3::internalURL
EOF2
    ini_common "$conf" nova
    ini_authtoken "$conf" nova "$NOVA_PASS"
    ini_ks_auth "$conf" placement placement "$PLACEMENT_PASS"
    ini_ks_auth "$conf" neutron neutron "$NEUTRON_PASS"
    ini_set "$conf" cinder os_region_name "$OS_REGION"
    # nova-status (Zed) requires nova to send a service token with the user's token.
    ini_service_user "$conf" nova "$NOVA_PASS"
}

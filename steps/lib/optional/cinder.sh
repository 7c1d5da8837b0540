#!/usr/bin/env bash
# steps/lib/optional/cinder.sh: cinder.conf's settings shared by cinder-controller and cinder-volume (`# uses:
# service, cinder`: it calls service's functions). Only function definitions (see common.sh).

# cinder_conf_common: cinder.conf of the controller and the block nodes (CINDER_DBPASS, CINDER_PASS, NOVA_PASS
# and RABBIT_PASS loaded).
cinder_conf_common() {
    local conf=/etc/cinder/cinder.conf
    ini_merge "$conf" root:cinder <<EOF2
[DEFAULT]
my_ip = $MGMT_IP
glance_api_servers = $(internal_url :9292)
osapi_volume_workers = 1
[database]
connection = $(db_url cinder "$CINDER_DBPASS" cinder)
EOF2
    ini_common "$conf" cinder
    ini_authtoken "$conf" cinder "$CINDER_PASS"
    ini_service_user "$conf" cinder "$CINDER_PASS"
    # Cinder tells nova about volume events through the catalog; its default interface is public. Those calls
    # are privileged: as the nova service user (Zed's cinder sends them with the caller's token without it).
    ini_ks_auth "$conf" nova nova "$NOVA_PASS"
    ini_set "$conf" nova interface internal
}

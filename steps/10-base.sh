#!/usr/bin/env bash
# step: base
# roles: controller, compute, block, object
# after: -
# timeout: 1800
# inputs: node facts, cluster facts (CONTROLLER_IP, MGMT_CIDR, APT_PROXY, optional NTP_UPSTREAM)
# guarantees: non-local bind (services bound to MGMT_IP start before DHCP configures it); chrony (controller serves MGMT_CIDR, the others follow it), crudini/jq/curl/python3-openstackclient/python3-boto3, br_netfilter and bridge sysctls on controller and compute
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_vars MGMT_CIDR

apt_install chrony crudini jq curl ca-certificates python3-openstackclient python3-boto3 iptables \
    iproute2 procps lsof

# --- time: the controller serves the management subnet (and keeps serving when it has no upstream), every other
# node follows the controller. Upstream: NTP_UPSTREAM from cluster.env; default Amazon Time Sync on AWS, none in
# the rig (whose nodes must not reach out).
if [[ "$ROLE" == controller ]]; then
    if [[ -z "${NTP_UPSTREAM+x}" && "$SECRET_SOURCE" == secretsmanager:* ]]; then NTP_UPSTREAM=169.254.169.123; fi
    write_file /etc/chrony/conf.d/openstack-aws.conf 0644 < <(
        echo "# openstack-aws: the controller is the management subnet's time server"
        [[ -z "${NTP_UPSTREAM:-}" ]] || echo "server $NTP_UPSTREAM prefer iburst minpoll 4 maxpoll 4"
        echo "allow $MGMT_CIDR"
        echo "local stratum 10"
    )
else
    write_file /etc/chrony/conf.d/openstack-aws.conf 0644 <<EOF
# openstack-aws: follow the controller
server $CONTROLLER_IP iburst
EOF
fi
if grep -qE '^(pool|server) ' /etc/chrony/chrony.conf; then
    sed -i -E 's/^((pool|server) .*)/# openstack-aws: \1/' /etc/chrony/chrony.conf
    mark_changed /etc/chrony/chrony.conf
fi
if in_container; then
    # A container may not set the clock: chrony's unit skips itself without CAP_SYS_TIME. Run it with -x
    # (serve and follow time without touching the clock) so the rig keeps the same topology.
    mkdir -p /etc/systemd/system/chrony.service.d
    write_file /etc/systemd/system/chrony.service.d/openstack-aws.conf 0644 <<'UNIT'
[Unit]
ConditionCapability=
[Service]
ExecStart=
ExecStart=!/usr/sbin/chronyd -F 1 -x
UNIT
    changed /etc/systemd/system/chrony.service.d/openstack-aws.conf && systemctl daemon-reload
fi
svc_apply "/etc/chrony/conf.d/openstack-aws.conf /etc/chrony/chrony.conf /etc/systemd/system/chrony.service.d/openstack-aws.conf" chrony
svc_check chrony

# --- bridge netfilter: Neutron's linuxbridge security groups need iptables to see bridged traffic.
if [[ "$ROLE" == controller || "$ROLE" == compute ]]; then
    write_file /etc/modules-load.d/openstack-aws.conf 0644 <<<br_netfilter
    if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
        modprobe br_netfilter 2>/dev/null ||
            die "br_netfilter is not loaded and cannot be loaded here (in a container: load it on the host)"
    fi
    keys=(net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)
    # The controller has three ENIs: answer ARP only on the interface that holds the address (else the provider
    # bridge answers for the public address: see "How the AWS network fix works" in steps/README.md).
    [[ "$ROLE" != controller ]] || keys+=(net.ipv4.conf.all.arp_ignore net.ipv4.conf.default.arp_ignore)
    sysctl_on /etc/sysctl.d/60-openstack-aws.conf "${keys[@]}"
fi

# --- services bound to the management address (MariaDB, RabbitMQ, memcached, rsync, the Swift servers...) may start
# before DHCP has configured it (network.target does not wait for addresses): with non-local bind they listen on
# it anyway and take traffic as soon as it exists, instead of failing and staying down (see steps/README.md).
sysctl_on /etc/sysctl.d/60-openstack-aws-bind.conf net.ipv4.ip_nonlocal_bind net.ipv6.ip_nonlocal_bind

chronyc -n sources 2>/dev/null | sed 's/^/  /' || true
log "base ready"

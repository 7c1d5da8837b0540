#!/usr/bin/env bash
# step: neutron-controller
# roles: controller
# after: nova-controller
# timeout: 1800
# uses: service, neutron
# inputs: node facts (MGMT_IF, MGMT_IP, PROVIDER_IF), cluster facts (VPC_DNS, CONTROLLER_IP, COMPUTE_IPS), secrets ADMIN_PASS NEUTRON_DBPASS NEUTRON_PASS NOVA_PASS RABBIT_PASS METADATA_SECRET MEMCACHE_SECRET_KEY
# guarantees: neutron-api (MGMT_IP:9696 only; uwsgi workers of one thread each, eventlet-safe) and neutron-rpc-server with ML2 (flat physnet provider on bridge br-provider, which holds PROVIDER_IF and the provider backhaul osa-provider (VXLAN VNI 1001, UDP 4790, from MGMT_IP, flooding to every other node of CONTROLLER_IP and COMPUTE_IPS; openstack-aws-provider-backhaul.service rebuilds both at every boot before the agent, re-reading the node list; an earlier install's brq<provider network> with PROVIDER_IF and its taps is folded into br-provider), VXLAN from MGMT_IP, linuxbridge (Debian 12) or openvswitch (13: br-provider joined to br-ex by a veth pair; iptables_hybrid) + l2population, port security), that layer 2 agent, L3, DHCP (dnsmasq forwarding to VPC_DNS) and metadata agents alive; MTUs: VXLAN networks = MGMT_IF MTU - 50, provider (external) networks 1500
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars PROVIDER_IF VPC_DNS
load_secrets NEUTRON_DBPASS NEUTRON_PASS NOVA_PASS RABBIT_PASS METADATA_SECRET

db_ensure neutron neutron NEUTRON_DBPASS
os_admin
os_register neutron network "OpenStack Networking" NEUTRON_PASS :9696

backend=$(neutron_backend)
read -r agent agent_ini < <(neutron_agent)
apt_install neutron-api neutron-rpc-server neutron-l3-agent neutron-dhcp-agent neutron-metadata-agent ipset
case "$backend" in
    linuxbridge) apt_install neutron-linuxbridge-agent ;;
    openvswitch) apt_install neutron-openvswitch-agent ;;
esac

# MTU (see steps/README.md "MTUs"): the VPC carries jumbo frames between ENIs (9001) but only 1500 to the
# internet. Self-service (VXLAN) networks ride the management ENI: their MTU is its MTU minus VXLAN's 50 bytes
# (8951 on AWS). The flat provider network is the router's way to the internet: 1500. The router between them
# answers oversized DF packets with "fragmentation needed", and TCP's MSS already fits each side.
mgmt_mtu=$(cat "/sys/class/net/$MGMT_IF/mtu")
conf=/etc/neutron/neutron.conf
neutron_conf_common
ini_merge "$conf" <<EOF2
[DEFAULT]
core_plugin = ml2
service_plugins = router
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
global_physnet_mtu = $mgmt_mtu
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
[database]
connection = $(db_url neutron "$NEUTRON_DBPASS" neutron)
EOF2
ini_ks_auth "$conf" nova nova "$NOVA_PASS"
# The nova notifier picks nova's endpoint by its own option (default public, the unreachable Elastic IP).
ini_set "$conf" nova endpoint_type internal

ml2=/etc/neutron/plugins/ml2/ml2_conf.ini
ini_merge "$ml2" root:neutron <<EOF2
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = vxlan
mechanism_drivers = $backend,l2population
extension_drivers = port_security
path_mtu = $mgmt_mtu
physical_network_mtus = provider:1500
[ml2_type_flat]
flat_networks = provider
[ml2_type_vxlan]
vni_ranges = 1:1000
[securitygroup]
enable_ipset = true
EOF2
ovs=
if [[ "$backend" == linuxbridge ]]; then linuxbridge_conf bridge_mappings "$PROVIDER_BRIDGE"; else
    dp=$(ovs_datapath_type)
    ovs_agent_conf "$dp"
    ovs=$OVS_PROVIDER_BRIDGE
    # Namespace ends as veths, not OVS internal ports: vswitchd's userspace datapath cannot manage an internal port
    # moved into a namespace, nor fill in checksums a veth leaves open (the agents switch its offload off when they
    # know the datapath: dnsmasq's DNS answers were dropped without it).
    for f in l3 dhcp; do
        ini_set /etc/neutron/${f}_agent.ini DEFAULT ovs_use_veth "$([[ $dp == netdev ]] && echo true || echo false)"
        ini_set /etc/neutron/${f}_agent.ini ovs datapath_type "$dp"
    done
fi
ini_merge /etc/neutron/l3_agent.ini root:neutron <<EOF2
[DEFAULT]
interface_driver = $backend
EOF2
ini_merge /etc/neutron/dhcp_agent.ini root:neutron <<EOF2
[DEFAULT]
interface_driver = $backend
dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
enable_isolated_metadata = true
# A subnet created without --dns-nameserver gets dnsmasq as its resolver, which forwards to the VPC's resolver
# (without this it forwards nowhere and instances resolve no name).
dnsmasq_dns_servers = $VPC_DNS
EOF2
ini_merge /etc/neutron/metadata_agent.ini root:neutron <<EOF2
[DEFAULT]
nova_metadata_host = $CONTROLLER_IP
metadata_proxy_shared_secret = $METADATA_SECRET
metadata_workers = 1
EOF2
uwsgi_processes /etc/neutron/neutron-api-uwsgi.ini 2
# One request at a time per worker: neutron-api is eventlet-monkey-patched (/usr/bin/neutron-api imports
# neutron.cmd.eventlet), and Debian's uwsgi runs 32 OS threads per worker (threads = 32). Green locks shared between
# those threads wake a greenlet of another thread's hub: "greenlet.error: cannot switch to a different thread", and
# the request that waited on it never answers (a router delete hung for minutes). neutron's own uwsgi example runs
# one thread per process.
ini_set /etc/neutron/neutron-api-uwsgi.ini uwsgi threads 1
ini_behind_proxy "$conf"
uwsgi_on_mgmt neutron-server # /etc/init.d/neutron-api's NAME

provider_backhaul "$PROVIDER_BRIDGE" ${ovs:+"$ovs"}
as_service neutron neutron-db-manage --config-file "$conf" --config-file "$ml2" upgrade head >/dev/null ||
    die "neutron-db-manage upgrade head failed: see /var/log/neutron"

all=(neutron-api neutron-rpc-server "$agent" neutron-dhcp-agent neutron-metadata-agent neutron-l3-agent)
svc_apply "$conf $ml2 /etc/neutron/neutron-api-uwsgi.ini /etc/default/neutron-server packages" neutron-api \
    neutron-rpc-server
svc_apply "$conf $ml2 $agent_ini packages" "$agent"
svc_apply "$conf /etc/neutron/dhcp_agent.ini packages" neutron-dhcp-agent
svc_apply "$conf /etc/neutron/metadata_agent.ini packages" neutron-metadata-agent
svc_apply "$conf /etc/neutron/l3_agent.ini packages" neutron-l3-agent
wait_http "http://$CONTROLLER_IP:9696" 120
svc_check "${all[@]}"

agents_alive() {
    local host
    host=$(hostname)
    (($(openstack network agent list --host "$host" -f value -c Alive | grep -c True) >= 4))
}
wait_for "the $backend, DHCP, metadata and L3 agents on $(hostname) to be alive" 300 agents_alive
openstack network agent list -f value -c 'Agent Type' -c Host -c Alive | sed 's/^/  /'
log "neutron controller ready (VXLAN MTU $((mgmt_mtu - 50)), provider MTU 1500)"

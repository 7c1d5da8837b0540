#!/usr/bin/env bash
# step: verify
# roles: controller
# after: network-fix, nova-discover, cinder-volume, swift-rings, horizon
# timeout: 1800
# uses: checks
# inputs: node facts (optional FLOATING_IPS), cluster facts (TEST_IMAGE_URL, COMPUTE_IPS, BLOCK_IPS, OBJECT_IPS, REGION, VPC_DNS, optional PROBE_IP, PROBE_NAME), secrets ADMIN_PASS DEMO_PASS
# guarantees: one CHECK line per check (ok, fail, or skip with the reason): the install guide's verify operations, resource classes (osc-placement), DNS through the DHCP port's forwarder, an instance on selfservice ACTIVE with an address that reaches PROBE_IP and resolves PROBE_NAME, the first of FLOATING_IPS associated with it and live on the router, a volume created, attached and detached where the kernel allows (a leftover one in an error state re-created); exit non-zero when any check fails
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars TEST_IMAGE_URL VPC_DNS REGION
PROBE_IP=${PROBE_IP:-198.51.100.10}
# A name the VPC resolver always answers (with or without internet access): the region's S3 endpoint.
PROBE_NAME=${PROBE_NAME:-s3.$REGION.amazonaws.com}
os_admin
failed=0

upgrade_check() { # COMMAND...: the *-status upgrade checks exit 0 (success) or 1 (warnings only); 2 is a failure
    local rc=0
    "$@" || rc=$?
    ((rc <= 1))
}
count_at_least() { # N COMMAND...: the command prints at least N lines
    local n=$1
    shift
    (($("$@" | grep -c .) >= n))
}

n_compute=$(words "${COMPUTE_IPS:-}")
n_block=$(words "${BLOCK_IPS:-}")

# --- the install guide's "verify operation" sections
check token-issue "openstack token issue (admin)" openstack token issue
check demo-token-issue "openstack token issue (demo)" bash -c '. /root/demo-openrc && openstack token issue'
check image-list "openstack image list" openstack image list
check placement-status "placement-status upgrade check" upgrade_check placement-status upgrade check
check resource-class-list "openstack resource class list (osc-placement): VCPU listed" \
    bash -c "openstack resource class list -f value -c name | grep -x VCPU"
check compute-service-list "nova-scheduler, nova-conductor and $n_compute nova-compute up" count_at_least \
    $((2 + n_compute)) bash -c "openstack compute service list -f value -c State | grep -x up"
check hypervisor-list "$n_compute hypervisor(s)" count_at_least "$n_compute" openstack hypervisor list -f value -c ID
check nova-status "nova-status upgrade check" upgrade_check as_service nova nova-status upgrade check
check network-agent-list "4 agents on the controller + 1 per compute node alive" count_at_least $((4 + n_compute)) \
    bash -c "openstack network agent list -f value -c Alive | grep -x True"
check volume-service-list "cinder-scheduler and $n_block cinder-volume up" count_at_least $((1 + n_block)) \
    bash -c "openstack volume service list -f value -c State | grep -x up"
# 192.0.2.1 (TEST-NET-1) is nobody's: binding it works only with non-local bind, what lets services bound to the
# management address start before DHCP has configured it (base).
check nonlocal-bind "a socket binds an address this node does not hold (net.ipv4.ip_nonlocal_bind)" \
    python3 -c 'import socket; socket.socket().bind(("192.0.2.1", 0))'
check horizon-login-page "dashboard login page answers 200" \
    bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 http://$CONTROLLER_IP/auth/login/) == 200 ]]"

# --- Swift: stat, upload, download (as demo, whose role myrole is an operator role)
swift_roundtrip() ( # a subshell: demo's credentials stay inside
    # shellcheck disable=SC1091
    . /root/demo-openrc
    local dir
    dir=$(mktemp -d)
    head -c 65536 /dev/urandom >"$dir/object.bin"
    openstack container create verify-container >/dev/null
    (cd "$dir" && openstack object create verify-container object.bin >/dev/null)
    openstack object save --file "$dir/back.bin" verify-container object.bin
    cmp "$dir/object.bin" "$dir/back.bin"
    openstack object delete verify-container object.bin
    rm -rf "$dir"
)
check swift-stat "swift stat (demo)" bash -c '. /root/demo-openrc && swift stat'
check swift-upload-download "64 KiB object uploaded, downloaded and compared" swift_roundtrip

# --- test image, flavor, security group
# Not the URL's own path: in the rig TEST_IMAGE_URL names a read-only file under OSA_STATE.
image_file=$OSA_STATE/verify-image.img
# A local file (the rig's image, rebuilt when its builder changes) is copied every run; a download is kept.
if [[ ! -s "$image_file" || "$TEST_IMAGE_URL" == file://* ]]; then
    curl -fsSL --max-time 300 -o "$image_file.tmp" "$TEST_IMAGE_URL" || die "cannot fetch the test image $TEST_IMAGE_URL"
    mv "$image_file.tmp" "$image_file"
fi
# Uploaded as qcow2: nova's image format inspector rejects raw images whose first sector looks like a partition
# table it cannot validate (the rig's FAT test image); cirros on AWS is qcow2 already.
if [[ "$(head -c 4 "$image_file" | od -An -c | tr -d ' ')" != "QFI373" ]]; then
    apt_install qemu-utils
    qemu-img convert -f raw -O qcow2 "$image_file" "$image_file.qcow2" || die "cannot convert the test image to qcow2"
    mv "$image_file.qcow2" "$image_file"
    log "test image converted to qcow2"
fi
# An uploaded verify-image that is not this file (not qcow2, or another checksum: a rebuilt test image) is replaced,
# and so is the instance booted from it.
if [[ -n "$(os_id image verify-image)" ]]; then
    have=$(openstack image show verify-image -f json -c disk_format -c checksum |
        jq -r '"\(.disk_format) \(.checksum)"')
    want="qcow2 $(md5sum <"$image_file" | cut -d' ' -f1)"
    if [[ "$have" != "$want" ]]; then
        # shellcheck disable=SC1091
        (
            . /root/demo-openrc
            if [[ -n "$(os_id server verify-instance)" ]]; then openstack server delete --wait verify-instance; fi
        )
        openstack image delete verify-image
        mark_changed "image:verify-image"
        log "old verify-image ($have) and its verify-instance deleted: the test image is now $want"
    fi
fi
if [[ -z "$(os_id image verify-image)" ]]; then
    openstack image create verify-image --file "$image_file" --disk-format qcow2 --container-format bare \
        --public >/dev/null || die "cannot upload the test image"
    mark_changed "image:verify-image"
    log "image verify-image uploaded"
fi
check image-active "verify-image is active" bash -c '[[ $(openstack image show verify-image -f value -c status) == active ]]'
[[ -n "$(os_id flavor m1.verify)" ]] || openstack flavor create --vcpus 1 --ram 256 --disk 1 m1.verify >/dev/null

# --- instance on the self-service network, as demo
(
    # shellcheck disable=SC1091
    . /root/demo-openrc
    default_sg_open
    server_replace_failed verify-instance
    if [[ -z "$(os_id server verify-instance)" ]]; then
        openstack server create --flavor m1.verify --image verify-image --network selfservice verify-instance >/dev/null
        mark_changed "server:verify-instance"
        log "instance verify-instance created"
    fi
) || die "cannot create the verify instance (see the output above)"
OS_PASSWORD=$(secret DEMO_PASS)
export OS_PROJECT_NAME=demo OS_USERNAME=demo OS_PASSWORD
wait_for "verify-instance to leave BUILD" 900 server_settled verify-instance
status=$(server_status verify-instance)
if [[ "$status" == ACTIVE ]]; then
    # by id from here on: as admin, a name resolves only in admin's own project
    server_id=$(openstack server show verify-instance -f value -c id)
    addr=$(openstack server show verify-instance -f json -c addresses | jq -r '.addresses.selfservice[0] // empty')
    check_line instance-active ok "verify-instance ACTIVE on selfservice with $addr"
else
    fault=$(openstack server show verify-instance -f json -c fault | jq -r '.fault.message // "?"')
    check_line instance-active fail "verify-instance $status: $fault"
    failed=$((failed + 1))
    addr=""
fi

# --- data path: router namespace to the probe, instance to the probe (its console), router to the instance
os_admin
router_id=$(os_id router router)
ns="qrouter-$router_id"
check router-ping-probe "ip netns exec $ns ping $PROBE_IP" ip netns exec "$ns" ping -c 3 -W 2 "$PROBE_IP"
if [[ -n "$addr" ]]; then
    check router-ping-instance "ip netns exec $ns ping $addr" retry 30 5 ip netns exec "$ns" ping -c 1 -W 2 "$addr"
    if console_has verify-instance ""; then
        console_check instance-ping-probe verify-instance "probe $PROBE_IP"
        console_check instance-resolves-name verify-instance "dns $PROBE_NAME"
    else
        why="the image does not report to its console (not the rig's test image)"
        check_line instance-ping-probe skip "$why; use the router and floating IP checks"
        check_line instance-resolves-name skip "$why; see dhcp-dns-forwarder, or nslookup $PROBE_NAME in the instance"
    fi
fi

# --- floating IP: the pool's first address (a secondary private address of the provider ENI with its own Elastic
# IP) on verify-instance. Reaching it from the internet is checked from outside: the rig pings its Elastic IP from
# the probe side; on AWS, ping the FloatingIps output from allowed_cidr (README).
fip=${FLOATING_IPS%% *}
if [[ -z "$fip" ]]; then
    check_line floating-ip-associated skip "no floating IP pool (floating_ips=0): nothing to associate"
elif [[ -z "$addr" ]]; then
    check_line floating-ip-associated fail "no ACTIVE verify-instance to associate $fip with"
    failed=$((failed + 1))
else
    # Choosing the address is an admin right; the floating IP still belongs to demo, like its instance.
    if [[ -z "$(openstack floating ip list --floating-ip-address "$fip" -f value -c ID)" ]]; then
        openstack floating ip create --project demo --floating-ip-address "$fip" provider >/dev/null ||
            die "cannot create floating IP $fip: is it in provider-subnet's allocation pool? (network-fix sets it)"
        mark_changed "floating-ip:$fip"
        log "floating IP $fip created"
    fi
    instance_port=$(openstack port list --device-id "$server_id" --network selfservice -f value -c ID | head -n1)
    [[ -n "$instance_port" ]] || die "verify-instance ($server_id) has no port on selfservice"
    if [[ "$(openstack floating ip show "$fip" -f value -c port_id)" != "$instance_port" ]]; then
        openstack floating ip set --port "$instance_port" "$fip" || die "cannot associate floating IP $fip with verify-instance"
        mark_changed "floating-ip:$fip:port"
        log "floating IP $fip associated with verify-instance ($addr)"
    fi
    fip_live() {
        [[ "$(openstack floating ip show "$fip" -f value -c status)" == ACTIVE ]] &&
            ip netns exec "$ns" ip -o addr show | grep -F " $fip/32 " >/dev/null
    }
    check floating-ip-associated "$fip -> $addr (verify-instance): ACTIVE and on the router's gateway port" retry 30 2 fip_live
fi

# --- DNS: dnsmasq of selfservice's DHCP port (the resolver of any subnet created without --dns-nameserver)
# forwards to the VPC resolver (dnsmasq_dns_servers); asked from the DHCP namespace, as an instance would.
dhcp_forwards() {
    local net dhcp_ip
    net=$(os_id network selfservice)
    dhcp_ip=$(openstack port list --network selfservice --device-owner network:dhcp -f json |
        jq -r '.[0]."Fixed IP Addresses"[0].ip_address // empty')
    [[ -n "$dhcp_ip" ]] || { echo "selfservice has no DHCP port"; return 1; }
    echo "dig @$dhcp_ip $PROBE_NAME:"
    ip netns exec "qdhcp-$net" dig +short +time=3 +tries=2 "@$dhcp_ip" "$PROBE_NAME" A | grep -E '^[0-9.]+$'
}
apt_install bind9-dnsutils
check dhcp-dns-forwarder "$PROBE_NAME resolved by the DHCP port's dnsmasq (forwarder $VPC_DNS)" retry 10 3 dhcp_forwards

# --- volume: create, attach, detach (needs device-mapper on the block node and iscsi_tcp on the compute node).
# Detach is the call Cinder accepts only as a service call (nova's service token with the service role).
vol_status() { openstack volume show verify-volume -f value -c status 2>/dev/null || true; }
# volume_usable: verify-volume exists and is available or in-use; one a failed run left in an error state (error,
# error_deleting, error_attaching...) or stuck half-way is deleted and created again, so it never fails later runs.
volume_usable() {
    local st
    st=$(vol_status)
    if [[ -n "$st" && ! "$st" =~ ^(available|in-use|creating|attaching|detaching|reserved)$ ]]; then
        log "verify-volume is '$st' from an earlier run: deleting it"
        openstack volume set --state error verify-volume 2>/dev/null || true
        openstack volume delete --force verify-volume || return 1
        wait_for "verify-volume to be deleted" 300 bash -c '! openstack volume show verify-volume >/dev/null 2>&1'
        mark_changed "volume:verify-volume"
        st=""
    fi
    if [[ -z "$st" ]]; then
        openstack volume create --size 1 verify-volume >/dev/null || return 1
        mark_changed "volume:verify-volume"
    fi
    wait_for "verify-volume to be available or in-use" 300 bash -c \
        "openstack volume show verify-volume -f value -c status | grep -Ex 'available|in-use|error'"
    [[ "$(vol_status)" != error ]] || { echo "verify-volume went to error (see cinder-volume's log)"; return 1; }
}
volume_path_ok() {
    volume_usable || return 1
    if [[ "$(vol_status)" == available ]]; then openstack server add volume "$server_id" verify-volume; fi
    wait_for "verify-volume to be in-use" 300 bash -c \
        "openstack volume show verify-volume -f value -c status | grep -x in-use"
    openstack server remove volume "$server_id" verify-volume
    wait_for "verify-volume to be available again (detached)" 300 bash -c \
        "openstack volume show verify-volume -f value -c status | grep -x available"
}
block_kernel=$(openstack volume service list --service cinder-volume -f value -c Host | head -n1)
if [[ ! -e /dev/mapper/control ]] || ! { modinfo iscsi_tcp >/dev/null 2>&1 || [[ -d /sys/module/iscsi_tcp ]]; }; then
    check_line volume-create-attach-detach skip "this kernel lacks device-mapper (/dev/mapper/control) or iscsi_tcp: LVM volumes cannot be created, attached or detached (cinder-volume on ${block_kernel:-?} is up; see volume-service-list)"
elif [[ "$status" != ACTIVE ]]; then
    check_line volume-create-attach-detach fail "no ACTIVE instance to attach to"
    failed=$((failed + 1))
else
    check volume-create-attach-detach "1 GiB volume created, attached to verify-instance and detached" volume_path_ok
fi

((failed == 0)) || die "$failed check(s) failed (CHECK lines above)"
log "all checks passed or skipped with a reason"

#!/usr/bin/env bash
# step: verify
# roles: controller
# after: network-fix, nova-discover, cinder-volume, swift-rings, horizon
# timeout: 1800
# inputs: node facts (optional FLOATING_IPS), cluster facts (TEST_IMAGE_URL, COMPUTE_IPS, BLOCK_IPS, OBJECT_IPS, optional PROBE_IP), secrets ADMIN_PASS DEMO_PASS
# guarantees: one CHECK line per check (ok, fail, or skip with the reason): the install guide's verify operations, an instance on selfservice ACTIVE with an address that reaches PROBE_IP, the first of FLOATING_IPS associated with it and live on the router, a volume created and attached where the kernel allows; exit non-zero when any check fails
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars TEST_IMAGE_URL
PROBE_IP=${PROBE_IP:-198.51.100.10}
os_admin
failed=0

# check NAME DETAIL COMMAND...: one CHECK line from a command's success.
check() {
    local name=$1 detail=$2
    shift 2
    if "$@" >"$OSA_RUN/check.out" 2>&1; then
        check_line "$name" ok "$detail"
    else
        check_line "$name" fail "$detail: $(tail -n 3 "$OSA_RUN/check.out" | tr '\n' ' ')"
        failed=$((failed + 1))
    fi
}
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
words() { wc -w <<<"$1"; }

n_compute=$(words "${COMPUTE_IPS:-}")
n_block=$(words "${BLOCK_IPS:-}")

# --- the install guide's "verify operation" sections
check token-issue "openstack token issue (admin)" openstack token issue
check demo-token-issue "openstack token issue (demo)" bash -c '. /root/demo-openrc && openstack token issue'
check image-list "openstack image list" openstack image list
check placement-status "placement-status upgrade check" upgrade_check placement-status upgrade check
check compute-service-list "nova-scheduler, nova-conductor and $n_compute nova-compute up" count_at_least \
    $((2 + n_compute)) bash -c "openstack compute service list -f value -c State | grep -x up"
check hypervisor-list "$n_compute hypervisor(s)" count_at_least "$n_compute" openstack hypervisor list -f value -c ID
check nova-status "nova-status upgrade check" upgrade_check as_service nova nova-status upgrade check
check network-agent-list "4 agents on the controller + 1 per compute node alive" count_at_least $((4 + n_compute)) \
    bash -c "openstack network agent list -f value -c Alive | grep -x True"
check volume-service-list "cinder-scheduler and $n_block cinder-volume up" count_at_least $((1 + n_block)) \
    bash -c "openstack volume service list -f value -c State | grep -x up"
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
image_file=$OSA_STATE/test-image.img
if [[ ! -s "$image_file" ]]; then
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
if [[ -n "$(os_id image verify-image)" && "$(openstack image show verify-image -f value -c disk_format)" != qcow2 ]]; then
    openstack image delete verify-image
    mark_changed "image:verify-image"
    log "old verify-image (not qcow2) deleted"
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
    sg=$(openstack security group show default -f value -c id) || die "demo has no default security group"
    if ! openstack security group rule list "$sg" --protocol icmp --ingress -f value -c ID | grep . >/dev/null; then
        openstack security group rule create --ingress --protocol icmp "$sg" >/dev/null
    fi
    if ! openstack security group rule list "$sg" --protocol tcp --ingress -f value -c ID | grep . >/dev/null; then
        openstack security group rule create --ingress --protocol tcp --dst-port 1:65535 "$sg" >/dev/null
    fi
    if [[ "$(openstack server show verify-instance -f value -c status 2>/dev/null)" == ERROR ]]; then
        openstack server delete --wait verify-instance
        mark_changed "server:verify-instance"
        log "verify-instance in ERROR from an earlier run deleted"
    fi
    if [[ -z "$(os_id server verify-instance)" ]]; then
        openstack server create --flavor m1.verify --image verify-image --network selfservice verify-instance >/dev/null
        mark_changed "server:verify-instance"
        log "instance verify-instance created"
    fi
) || die "cannot create the verify instance (see the output above)"
OS_PASSWORD=$(secret DEMO_PASS)
export OS_PROJECT_NAME=demo OS_USERNAME=demo OS_PASSWORD
server_status() { openstack server show verify-instance -f value -c status; }
active_or_error() { [[ "$(server_status)" =~ ^(ACTIVE|ERROR)$ ]]; }
wait_for "verify-instance to leave BUILD" 900 active_or_error
status=$(server_status)
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
    console() { (. /root/demo-openrc && openstack console log show verify-instance 2>/dev/null) || true; }
    if console | grep -a 'RIG-IMAGE' >/dev/null; then
        probe_ok() { console | grep -a "probe $PROBE_IP ok" >/dev/null; }
        retry 60 5 probe_ok || true
        line=$(console | grep -a "probe $PROBE_IP" | tail -n1)
        if [[ "$line" == *" ok"* ]]; then
            check_line instance-ping-probe ok "console: $line"
        else
            check_line instance-ping-probe fail "console: ${line:-no probe line}"
            failed=$((failed + 1))
        fi
    else
        check_line instance-ping-probe skip "the image does not report to its console (not the rig's test image); use the router and floating IP checks"
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

# --- volume: create, attach (needs device-mapper on the block node and iscsi_tcp on the compute node)
volume_path_ok() {
    local vol_status
    vol_status=$(openstack volume show verify-volume -f value -c status 2>/dev/null || true)
    [[ -n "$vol_status" ]] || openstack volume create --size 1 verify-volume >/dev/null
    wait_for "verify-volume to be available or in-use" 300 bash -c \
        "openstack volume show verify-volume -f value -c status | grep -Ex 'available|in-use|error'"
    vol_status=$(openstack volume show verify-volume -f value -c status)
    [[ "$vol_status" != error ]] || { echo "volume in error"; return 1; }
    if [[ "$vol_status" == available ]]; then openstack server add volume "$server_id" verify-volume; fi
    wait_for "verify-volume to be in-use" 300 bash -c \
        "openstack volume show verify-volume -f value -c status | grep -x in-use"
}
block_kernel=$(openstack volume service list --service cinder-volume -f value -c Host | head -n1)
if [[ ! -e /dev/mapper/control ]] || ! { modinfo iscsi_tcp >/dev/null 2>&1 || [[ -d /sys/module/iscsi_tcp ]]; }; then
    check_line volume-create-attach skip "this kernel lacks device-mapper (/dev/mapper/control) or iscsi_tcp: LVM volumes cannot be created or attached (cinder-volume on ${block_kernel:-?} is up; see volume-service-list)"
elif [[ "$status" != ACTIVE ]]; then
    check_line volume-create-attach fail "no ACTIVE instance to attach to"
    failed=$((failed + 1))
else
    check volume-create-attach "1 GiB volume created and attached to verify-instance" volume_path_ok
fi

((failed == 0)) || die "$failed check(s) failed (CHECK lines above)"
log "all checks passed or skipped with a reason"

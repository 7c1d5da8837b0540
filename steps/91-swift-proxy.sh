#!/usr/bin/env bash
# step: swift-proxy
# roles: controller
# after: keystone, swift-storage
# timeout: 1200
# uses: service, swift
# inputs: node facts, cluster facts (OBJECT_IPS), artifacts swift-devices-<ip>, secrets ADMIN_PASS SWIFT_PASS SWIFT_HASH_PATH_PREFIX SWIFT_HASH_PATH_SUFFIX MEMCACHE_SECRET_KEY
# guarantees: swift-proxy on MGMT_IP:8080 only with Keystone auth (operator roles admin, myrole, member); account/container/object rings over every object node's devices (one zone per node), published as artifacts <ring>.ring.gz; user swift, service object-store, public endpoint on ELASTIC_IP, internal and admin on CONTROLLER_IP
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars OBJECT_IPS
load_secrets SWIFT_PASS

os_admin
os_register swift object-store "OpenStack Object Storage" SWIFT_PASS ':8080/v1/AUTH_%(project_id)s' swift :8080/v1

apt_install swift swift-proxy python3-swiftclient python3-keystonemiddleware
swift_conf_common

conf=/etc/swift/proxy-server.conf
# bind_ip: Debian's init script hands it to uwsgi; the public-tls step's proxy has PUBLIC_IP:8080.
ini_merge "$conf" root:swift <<EOF2
[DEFAULT]
bind_ip = $MGMT_IP
bind_port = 8080
user = swift
swift_dir = /etc/swift
workers = 2
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache container_sync bulk ratelimit authtoken keystoneauth container-quotas account-quotas slo dlo versioned_writes proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin,myrole,member
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = $(public_url :5000)
auth_url = $(internal_url :5000)
interface = internal
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = swift
password = $SWIFT_PASS
delay_auth_decision = true
[filter:cache]
use = egg:swift#memcache
memcache_servers = $CONTROLLER_IP:11211
EOF2
ini_authtoken_cache "$conf" filter:authtoken

# --- rings: every device each object node published, one zone per node; built once, extended when a node or
# device is new, rebalanced only then.
read -r -a objects <<<"$OBJECT_IPS"
declare -A devices=()
for ip in "${objects[@]}"; do
    f=$(mktemp)
    wait_for "object node $ip to publish its device list (step swift-storage)" 600 artifact_get "swift-devices-$ip" "$f"
    devices[$ip]=$(tr '\n' ' ' <"$f")
    rm -f "$f"
done
total=0
for ip in "${objects[@]}"; do
    read -r -a d <<<"${devices[$ip]}"
    total=$((total + ${#d[@]}))
done
((total > 0)) || die "the object nodes published no devices"
replicas=$((total < 3 ? total : 3))

cd /etc/swift
for entry in "${SWIFT_RINGS[@]}"; do
    ring=${entry%%:*} port=${entry##*:} added=0
    if [[ ! -e "$ring.builder" ]]; then
        swift-ring-builder "$ring.builder" create 10 "$replicas" 1 >/dev/null || die "cannot create $ring.builder"
        log "$ring.builder created (2^10 partitions, $replicas replicas)"
    fi
    zone=0
    for ip in "${objects[@]}"; do
        zone=$((zone + 1))
        read -r -a d <<<"${devices[$ip]}"
        for dev in "${d[@]}"; do
            listing=$(swift-ring-builder "$ring.builder")
            if ! grep -E "[[:space:]]${ip}:${port}[[:space:]].*[[:space:]]${dev}[[:space:]]" <<<"$listing" >/dev/null; then
                swift-ring-builder "$ring.builder" add --region 1 --zone "$zone" --ip "$ip" --port "$port" \
                    --device "$dev" --weight 100 >/dev/null || die "cannot add $ip:$port/$dev to $ring.builder"
                log "$ring ring: added $ip:$port/$dev (zone $zone)"
                added=1
            fi
        done
    done
    if ((added)) || [[ ! -e "$ring.ring.gz" ]]; then
        rc=0
        swift-ring-builder "$ring.builder" rebalance >/dev/null || rc=$?
        ((rc <= 1)) || die "swift-ring-builder $ring.builder rebalance failed (exit $rc)"
        log "$ring ring rebalanced"
        mark_changed rings
    fi
    artifact_put "$ring.ring.gz" "$ring.ring.gz"
done
cd - >/dev/null
chown -R root:swift /etc/swift

svc_apply "$conf /etc/swift/swift.conf rings packages" swift-proxy
wait_port "$CONTROLLER_IP" 8080 60
svc_check swift-proxy
log "swift proxy ready; rings published for ${objects[*]}"

#!/usr/bin/env bash
# step: swift-rings
# roles: object
# after: swift-proxy
# timeout: 900
# uses: swift
# inputs: node facts, cluster facts, artifacts account.ring.gz container.ring.gz object.ring.gz
# guarantees: the controller's rings in /etc/swift; account (:6202), container (:6201) and object (:6200) servers with their replicators, auditors and updaters running
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role object

tmp=$(mktemp -d)
for entry in "${SWIFT_RINGS[@]}"; do
    ring=${entry%%:*}
    artifact_get "$ring.ring.gz" "$tmp/$ring.ring.gz" ||
        die "artifact $ring.ring.gz is missing: run the swift-proxy step on the controller first"
    write_file "/etc/swift/$ring.ring.gz" 0644 root:swift <"$tmp/$ring.ring.gz"
done
rm -rf "$tmp"

rings="/etc/swift/account.ring.gz /etc/swift/container.ring.gz /etc/swift/object.ring.gz /etc/swift/swift.conf"
for server in account container object; do
    units=("swift-$server" "swift-$server-auditor" "swift-$server-replicator")
    case $server in
        account) units+=(swift-account-reaper) ;;
        container | object) units+=("swift-$server-updater") ;;
    esac
    svc_apply "$rings /etc/swift/$server-server.conf" "${units[@]}"
done
for entry in "${SWIFT_RINGS[@]}"; do wait_port "$MGMT_IP" "${entry##*:}" 60; done
svc_check swift-account swift-container swift-object
log "swift storage servers running"

#!/usr/bin/env bash
# steps/lib/optional/swift.sh: what the Swift steps share (`# uses: swift`): swift.conf and the rings' list. Only
# function definitions and constants (see common.sh).
# shellcheck disable=SC2034  # SWIFT_RINGS is used by the steps

# swift_conf_common: swift.conf (the hash path prefix/suffix shared by every Swift node) and /etc/swift's owner.
swift_conf_common() {
    local prefix suffix
    prefix=$(secret SWIFT_HASH_PATH_PREFIX) || exit 1
    suffix=$(secret SWIFT_HASH_PATH_SUFFIX) || exit 1
    install -d -o root -g swift -m 0755 /etc/swift
    ini_merge /etc/swift/swift.conf root:swift <<EOF2
[swift-hash]
swift_hash_path_suffix = $suffix
swift_hash_path_prefix = $prefix
[storage-policy:0]
name = Policy-0
default = yes
EOF2
    install -d -o swift -g swift -m 0755 /var/cache/swift
}

# Swift's rings: name and port of each server.
SWIFT_RINGS=(account:6202 container:6201 object:6200)

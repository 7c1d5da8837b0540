#!/usr/bin/env bash
# steps/lib/optional/sockets.sh: the socket check of the steps that promise where their ports listen
# (controller-infra, public-tls; `# uses: sockets`). Only function definitions (see common.sh).

# bound_only_to PORT ADDRESS...: false, printing them, when TCP listeners on PORT are bound to other addresses (every
# address included: 0.0.0.0, [::], *).
bound_only_to() {
    local port=$1 a rc=0
    shift
    while read -r a; do
        [[ " $* " == *" ${a%:"$port"} "* ]] || { printf '%s ' "$a"; rc=1; }
    done < <(ss -Hltn "sport = :$port" | awk '{print $4}')
    return "$rc"
}

#!/usr/bin/env bash
# steps/lib/optional/ebtables.sh: the ebtables the linuxbridge agent can live with (neutron-controller,
# neutron-compute; `# uses: ebtables`). Only function definitions (see common.sh).

# ebtables_among_delete_fix: ebtables-nft 1.8.9 (Debian 12) refuses to delete a rule that holds an among match by
# its specification ("RULE_DELETE failed (Invalid argument)"), although the same rule deletes by its number.
# Neutron's linuxbridge agent deletes each port's MAC rule (`--among-src`) that way whenever it sets a port up
# again: after every agent restart (a config change, a password rotation, a package upgrade) and every port
# update. The call fails, the agent retries all its ports forever, and the node builds no instance again. The
# wrapper becomes the preferred `ebtables` alternative: it is ebtables-nft, except that such a delete which fails
# is retried by the rule's number. Nothing else changes, and a fixed ebtables-nft never reaches the fallback.
ebtables_among_delete_fix() {
    write_file /usr/local/sbin/ebtables-osa 0755 <<'EOF2'
#!/bin/bash
# Written by openstack-on-aws (steps/lib/optional/ebtables.sh): ebtables-nft, except that a delete of a rule with
# an among match by its specification, which ebtables-nft 1.8.9 refuses, is retried by the rule's number.
set -uo pipefail
real=/usr/sbin/ebtables-nft
[[ " $* " == *" -D "*" --among-"* ]] || exec "$real" "$@"
err=$("$real" "$@" 2>&1 >/dev/null) && exit 0
rc=$?
table=filter opts=() chain=
while (($#)); do
    case $1 in
        -t) table=$2; shift 2 ;;
        --concurrent) opts+=("$1"); shift ;;
        -D) chain=$2; shift 2; break ;;
        *) break ;;
    esac
done
# Listings print MAC octets without leading zeros and may end a list with a comma; compare rules in one form.
canon() { tr 'A-F' 'a-f' | sed -E 's/(^|[ :,])0([0-9a-f])/\1\2/g; s/,( |$)/\1/g; s/ +/ /g; s/^ //; s/ $//'; }
want=$(printf '%s ' "$@" | canon)
num=
if [[ -n "$chain" ]]; then
    while read -r n rule; do
        [[ "$(canon <<<"$rule")" == "$want" ]] && { num=${n%.}; break; }
    done < <("$real" -t "$table" -L "$chain" --Ln 2>/dev/null | grep -E '^[0-9]+\.? ')
fi
[[ -n "$num" ]] || { printf '%s\n' "$err" >&2; exit "$rc"; }
exec "$real" -t "$table" "${opts[@]}" -D "$chain" "$num"
EOF2
    if ! update-alternatives --query ebtables 2>/dev/null | grep -q '^Alternative: /usr/local/sbin/ebtables-osa$'; then
        update-alternatives --quiet --install /usr/sbin/ebtables ebtables /usr/local/sbin/ebtables-osa 30 \
            --slave /usr/sbin/ebtables-restore ebtables-restore /usr/sbin/ebtables-nft-restore \
            --slave /usr/sbin/ebtables-save ebtables-save /usr/sbin/ebtables-nft-save
        mark_changed ebtables-alternative
    fi
    # An operator's manual choice (update-alternatives --set) stays; auto mode picks the wrapper.
    [[ "$(readlink -f /usr/sbin/ebtables)" == /usr/local/sbin/ebtables-osa ]] ||
        warn "ebtables is not the among-delete wrapper ($(readlink -f /usr/sbin/ebtables)): the linuxbridge agent fails to set up ports again after a restart"
}

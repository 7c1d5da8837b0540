#!/usr/bin/env bash
# steps/lib/optional/checks.sh: what the checking steps (verify, launch-instance) share: CHECK lines from commands,
# from the test image's console, and instances that a failed run left behind. Only function definitions; a step
# names it in its "# uses:" header. The functions count failures in the step's variable `failed`.
# shellcheck disable=SC2154  # failed: the using step's counter

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
# shellcheck disable=SC1091
console() { (. /root/demo-openrc && openstack console log show "$1" 2>/dev/null) || true; }
console_has() { console "$1" | grep -aF "RIG-IMAGE: $2" >/dev/null; } # SERVER TEXT
console_last() { console "$1" | grep -aF "RIG-IMAGE: $2 " | tail -n1; } # SERVER WHAT
console_last_ok() { [[ "$(console_last "$1" "$2")" == *"$2 ok"* ]]; }
# console_check NAME SERVER WHAT: a check from the test image's last "RIG-IMAGE: WHAT ok|fail" line on SERVER's
# console (waits 5 min for the last one to say ok: the image repeats its probes, and a path that changed under it,
# like a floating IP associated while it pings, may fail one attempt before the next succeeds)
console_check() {
    local line
    retry 60 5 console_last_ok "$2" "$3" || true
    line=$(console_last "$2" "$3")
    if [[ "$line" == *"$3 ok"* ]]; then
        check_line "$1" ok "console of $2: $line"
    else
        check_line "$1" fail "console of $2: ${line:-no '$3' line}"
        failed=$((failed + 1))
    fi
}

# probe_check NAME SERVER: NAME from SERVER's console line about PROBE_IP (the rig's test image pings it), skipped
# with the reason when the image does not report there. Call it once the console has output (after a wait for it).
probe_check() {
    if console_has "$2" ""; then
        console_check "$1" "$2" "probe $PROBE_IP"
    else
        check_line "$1" skip "the image does not report to its console (not the rig's test image)"
    fi
}

# default_sg_open: the current project's default security group lets ICMP and TCP in, as the install guide's
# "Launch an instance" does for ping and ssh (TCP from 1: the rig's proofs fetch the test image's page too).
default_sg_open() {
    local sg
    sg=$(openstack security group show default -f value -c id) || die "the project has no default security group"
    if ! openstack security group rule list "$sg" --protocol icmp --ingress -f value -c ID | grep . >/dev/null; then
        openstack security group rule create --ingress --protocol icmp "$sg" >/dev/null
        mark_changed "security-group:$sg:icmp"
    fi
    if ! openstack security group rule list "$sg" --protocol tcp --ingress -f value -c ID | grep . >/dev/null; then
        openstack security group rule create --ingress --protocol tcp --dst-port 1:65535 "$sg" >/dev/null
        mark_changed "security-group:$sg:tcp"
    fi
}

# server_status NAME: the instance's status, empty when there is none.
server_status() { openstack server show "$1" -f value -c status 2>/dev/null || true; }
server_settled() { [[ "$(server_status "$1")" =~ ^(ACTIVE|ERROR)$ ]]; }

# server_replace_failed NAME: an instance a failed run left in ERROR is deleted, so the next create starts afresh.
server_replace_failed() {
    [[ "$(server_status "$1")" == ERROR ]] || return 0
    openstack server delete --wait "$1"
    mark_changed "server:$1"
    log "$1 in ERROR from an earlier run deleted"
}


# words TEXT: how many space-separated words (the facts list nodes as "ip ip ...").
words() { wc -w <<<"$1"; }

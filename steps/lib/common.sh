#!/usr/bin/env bash
# steps/lib/common.sh: logging, node/cluster facts, secrets, config editing, waiting, packages, artifacts.
#
# Sourced by a step when it runs from a checkout (the guarded source line in each step); concatenated in front
# of the step when it runs as an SSM document or in the rig. So this file only defines functions and constants:
# nothing here runs at load time except marking the library as loaded.
# shellcheck disable=SC2034  # variables set here are used by the steps

OSA_LIB_COMMON=1
OSA_ETC=/etc/openstack-aws
OSA_STATE=/var/lib/openstack-aws
OSA_RUN=/run/openstack-aws
OSA_POLICY_RC=/usr/sbin/policy-rc.d
OSA_POLICY_RC_TAG="# openstack-aws apt_install, pid"
OSA_APT_LOG=/var/log/openstack-aws-apt.log

# ---------------------------------------------------------------------------------------------------- logging
_osa_step_name() {
    if [[ -n "${STEP_NAME:-}" ]]; then
        printf '%s' "$STEP_NAME"
    elif [[ -r "$0" ]] && grep -qm1 '^# step:' "$0" 2>/dev/null; then
        sed -n 's/^# step:[[:space:]]*\([a-z0-9-]*\).*/\1/p' "$0" | head -n1
    else
        printf 'step'
    fi
}

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "${OSA_STEP:-step}" "$*"; }
warn() { printf '%s [%s] WARNING: %s\n' "$(date -u +%H:%M:%S)" "${OSA_STEP:-step}" "$*" >&2; }
die() {
    printf '%s [%s] ERROR: %s\n' "$(date -u +%H:%M:%S)" "${OSA_STEP:-step}" "$*" >&2
    exit 1
}

# One machine-readable line per verification check: CHECK <name> <ok|fail|skip> <detail>
check_line() {
    local name=$1 result=$2
    shift 2
    printf 'CHECK %s %s %s\n' "$name" "$result" "${*:-}"
}

_osa_on_error() {
    local rc=$? line=$1 cmd=$2
    printf '%s [%s] ERROR: command failed (exit %s) at line %s: %s\n' "$(date -u +%H:%M:%S)" "${OSA_STEP:-step}" \
        "$rc" "$line" "$cmd" >&2
    printf '%s [%s] ERROR: step %s failed; fix the cause above and re-run the step (it is idempotent)\n' \
        "$(date -u +%H:%M:%S)" "${OSA_STEP:-step}" "${OSA_STEP:-step}" >&2
}

_osa_on_exit() {
    local rc=$?
    rm -f "$OSA_RUN/secrets.$$.json" 2>/dev/null || true
    if [[ -n "${OSA_POLICY_RC_MADE:-}" ]]; then rm -f "$OSA_POLICY_RC"; fi
    if ((rc == 0)); then
        log "done in $((SECONDS - OSA_T0))s; $(_osa_changes)"
    fi
    rm -f "$OSA_RUN/changes.$$" 2>/dev/null || true
}

# step_begin: call once at the top of every step, after the library is loaded. Loads the facts files, sets up
# error reporting and a private umask, and prepares state directories.
step_begin() {
    OSA_STEP=$(_osa_step_name)
    OSA_T0=$SECONDS
    umask 022
    set -o errtrace
    trap '_osa_on_error "$LINENO" "$BASH_COMMAND"' ERR
    trap _osa_on_exit EXIT
    export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    load_facts
    mkdir -p "$OSA_STATE" "$OSA_RUN"
    chmod 700 "$OSA_RUN"
    policy_rc_clean
    log "starting on ${NODE_NAME:-$(hostname)} (role ${ROLE:-?})"
}

# ---------------------------------------------------------------------------------------------------- facts
load_facts() {
    local f
    # override.env is optional and never on AWS: replacements for cluster facts where a site has other services
    # (the rig's secrets file, artifact folder, test image, apt proxy; see steps/README.md).
    for f in "$OSA_ETC/node.env" "$OSA_ETC/cluster.env" "$OSA_ETC/override.env"; do
        if [[ ! -r "$f" ]]; then
            [[ $f == */override.env ]] && continue
            die "$f is missing: userdata (or the rig) writes it before any step runs"
        fi
        set -a
        # shellcheck disable=SC1090
        . "$f"
        set +a
    done
    # VPC_DNS came with a later release than the userdata of nodes deployed before it: derive it as userdata does,
    # so updated steps run on such nodes without a rebuild.
    if [[ -z ${VPC_DNS:-} && -n ${MGMT_MAC:-} ]]; then
        VPC_DNS=$(vpc_dns_from_imds) || VPC_DNS=""
        export VPC_DNS
    fi
    require_vars ROLE NODE_NAME MGMT_IF MGMT_IP CONTROLLER_IP SECRET_SOURCE ARTIFACT_STORE
}

# imds_get PATH: one value from IMDSv2's meta-data (a token per call: steps ask rarely).
imds_get() {
    local imds=http://169.254.169.254/latest token
    token=$(curl -sf --max-time 5 -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60') || return 1
    curl -sf --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"
}

# vpc_dns_from_imds: the VPC resolver (the VPC range's base + 2) from IMDSv2, as userdata computes VPC_DNS.
vpc_dns_from_imds() {
    local cidr
    cidr=$(imds_get "network/interfaces/macs/$MGMT_MAC/vpc-ipv4-cidr-block") || return 1
    python3 -c 'import ipaddress, sys; print(ipaddress.ip_network(sys.argv[1])[2])' "$cidr"
}

# require_vars NAME...: die naming every fact that is missing or empty.
require_vars() {
    local v missing=()
    for v in "$@"; do
        [[ -n "${!v:-}" ]] || missing+=("$v")
    done
    ((${#missing[@]} == 0)) || die "missing facts: ${missing[*]} (see steps/README.md for node.env and cluster.env)"
}

# require_role ROLE...: die unless this node has one of the roles.
require_role() {
    local r
    for r in "$@"; do [[ "$ROLE" == "$r" ]] && return 0; done
    die "this step runs on role(s) $* but this node is '$ROLE'"
}

in_container() { systemd-detect-virt -cq 2>/dev/null; }

# ---------------------------------------------------------------------------------------------------- secrets
# secret NAME: print one secret. Source: SECRET_SOURCE = secretsmanager:<arn> (boto3 or aws cli with the
# instance role) or file:<path> (a JSON object). The JSON is cached for the step's lifetime in a 0600 file
# under /run (tmpfs, removed when the step exits); values never appear in arguments or logs.
_osa_secrets_json() {
    local cache="$OSA_RUN/secrets.$$.json"
    if [[ ! -s "$cache" ]]; then
        (
            umask 077
            case "$SECRET_SOURCE" in
                file:*)
                    local path=${SECRET_SOURCE#file:}
                    [[ -r "$path" ]] || die "secret file $path is not readable (SECRET_SOURCE=$SECRET_SOURCE)"
                    cp "$path" "$cache.tmp"
                    ;;
                secretsmanager:*)
                    local arn=${SECRET_SOURCE#secretsmanager:}
                    if python3 -c 'import boto3' 2>/dev/null; then
                        OSA_ARN=$arn python3 - >"$cache.tmp" <<'PY' || die "cannot read secret $arn from Secrets Manager (instance role needs secretsmanager:GetSecretValue)"
import os, sys, boto3
arn = os.environ["OSA_ARN"]
region = arn.split(":")[3]
sys.stdout.write(boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)["SecretString"])
PY
                    elif command -v aws >/dev/null; then
                        aws secretsmanager get-secret-value --region "$(cut -d: -f4 <<<"$arn")" --secret-id "$arn" \
                            --query SecretString --output text >"$cache.tmp" ||
                            die "cannot read secret $arn from Secrets Manager (instance role needs secretsmanager:GetSecretValue)"
                    else
                        die "neither python3-boto3 nor awscli is installed: cannot read $arn"
                    fi
                    ;;
                *) die "SECRET_SOURCE '$SECRET_SOURCE' is neither secretsmanager:<arn> nor file:<path>" ;;
            esac
            jq -e 'type == "object"' "$cache.tmp" >/dev/null || die "the secret at $SECRET_SOURCE is not a JSON object"
            mv "$cache.tmp" "$cache"
        ) || exit 1
    fi
    printf '%s' "$cache"
}

# Keys added after the first release, and the key each derives from (HMAC-SHA256, fixed label: stable everywhere)
# when an older secret lacks it: Secrets Manager keeps a secret until the seeder adds keys, a rig keeps its file.
declare -gA OSA_DERIVED_SECRETS=([MEMCACHE_SECRET_KEY]=RABBIT_PASS)

secret() {
    local name=$1 cache value
    cache=$(_osa_secrets_json) || exit 1
    value=$(jq -r --arg k "$name" '.[$k] // empty' "$cache")
    if [[ -z "$value" && -n "${OSA_DERIVED_SECRETS[$name]:-}" ]]; then
        value=$(secret "${OSA_DERIVED_SECRETS[$name]}" | python3 -c 'import hashlib, hmac, sys
print(hmac.new(sys.stdin.buffer.read(), b"openstack-aws:" + sys.argv[1].encode(), hashlib.sha256).hexdigest())' \
            "$name") || exit 1
    fi
    [[ -n "$value" ]] || die "secret $name is missing from $SECRET_SOURCE"
    printf '%s' "$value"
}

# load_secrets NAME...: set shell variables (not exported) of the same names, so heredocs can use them and a
# missing secret stops the step before anything is written.
load_secrets() {
    local name value
    for name in "$@"; do
        value=$(secret "$name") || exit 1
        printf -v "$name" '%s' "$value"
    done
}

# ---------------------------------------------------------------------------------------------------- config
declare -gA OSA_CHANGED=()

_osa_sum() { if [[ -e "$1" ]]; then sha256sum "$1" | cut -d' ' -f1; else echo none; fi; }

# ini_merge FILE [OWNER:GROUP]: merge the INI text on stdin into FILE (crudini --merge; values never appear on
# a command line). Records whether the file changed, for svc_apply: so never call it (or write_file) at the end
# of a pipe, which would run it in a subshell and lose the record; use a heredoc or < <(...).
# With OWNER:GROUP the file is a service's configuration, which holds passwords: others may not read it (packages
# ship some, e.g. Swift's, world-readable).
ini_merge() {
    local file=$1 owner=${2:-} before
    before=$(_osa_sum "$file")
    [[ -e "$file" ]] || install -m 0640 /dev/null "$file"
    crudini --merge "$file" || die "crudini could not merge settings into $file"
    if [[ -n "$owner" ]]; then
        chown "$owner" "$file"
        if [[ -n "$(find "$file" -maxdepth 0 -perm /o=rwx)" ]]; then
            chmod o-rwx "$file"
            mark_changed "$file:mode"
            log "$file: no access for others"
        fi
    fi
    [[ "$(_osa_sum "$file")" == "$before" ]] || { mark_changed "$file"; log "configured $file"; }
}

# ini_set FILE SECTION KEY VALUE: one setting (for values that are not secret; secrets go through ini_merge).
ini_set() {
    ini_merge "$1" <<<"$(printf '[%s]\n%s = %s' "$2" "$3" "$4")"
}

# ini_del FILE SECTION KEY
ini_del() {
    local before
    before=$(_osa_sum "$1")
    crudini --del "$1" "$2" "$3"
    [[ "$(_osa_sum "$1")" == "$before" ]] || mark_changed "$1"
}

# write_file FILE MODE [OWNER:GROUP]: replace FILE with stdin only when the content differs.
write_file() {
    local file=$1 mode=$2 owner=${3:-} tmp
    tmp=$(mktemp "$file.XXXXXX" 2>/dev/null || mktemp)
    cat >"$tmp"
    if [[ -e "$file" ]] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$file"
        mark_changed "$file"
        log "wrote $file"
    fi
    chmod "$mode" "$file"
    [[ -z "$owner" ]] || chown "$owner" "$file"
}

# changed FILE...: true when any of the files changed during this step.
changed() {
    local f
    for f in "$@"; do [[ -n "${OSA_CHANGED[$f]:-}" ]] && return 0; done
    return 1
}

# mark_changed TAG: record a change (a file, a package installed, an object created...). It is also journaled in a
# file, so changes made in a subshell count: the step's last line lists them, and "nothing changed" is how a
# re-run proves it was a no-op.
mark_changed() {
    OSA_CHANGED[$1]=1
    printf '%s\n' "$1" >>"$OSA_RUN/changes.$$" 2>/dev/null || true
}
_osa_changes() {
    if [[ -s "$OSA_RUN/changes.$$" ]]; then
        printf 'changed: %s' "$(sort -u "$OSA_RUN/changes.$$" | paste -sd ' ' | cut -c1-400)"
    else
        printf 'nothing changed'
    fi
}

# set_line FILE REGEX LINE: replace the first line matching REGEX with LINE, or append LINE.
set_line() {
    local file=$1 re=$2 line=$3
    if grep -qxF -- "$line" "$file" 2>/dev/null; then return 0; fi
    if grep -qE -- "$re" "$file" 2>/dev/null; then
        local tmp
        tmp=$(mktemp)
        OSA_LINE=$line awk -v re="$re" '!d && $0 ~ re {print ENVIRON["OSA_LINE"]; d=1; next} {print}' "$file" >"$tmp"
        cat "$tmp" >"$file"
        rm -f "$tmp"
    else
        printf '%s\n' "$line" >>"$file"
    fi
    mark_changed "$file"
    log "set '$line' in $file"
}

# sysctl_on FILE KEY...: the kernel settings = 1, now and at every boot (FILE under /etc/sysctl.d).
sysctl_on() {
    local file=$1 key
    shift
    write_file "$file" 0644 < <(printf '%s = 1\n' "$@")
    for key in "$@"; do
        [[ "$(sysctl -n "$key")" == 1 ]] || sysctl -q -w "$key=1" || die "cannot set $key"
    done
}

# ---------------------------------------------------------------------------------------------------- services
# svc_apply "FILE..." SERVICE...: enable the services; restart one when a file changed in this step (or a tag
# given to mark_changed), or when a file is newer than the service's last start (a run that failed between
# writing the configuration and restarting), otherwise start it if it is not running. A second run with
# nothing changed restarts nothing.
svc_apply() {
    local -a files
    read -r -a files <<<"$1"
    shift
    local svc f since restart
    for svc in "$@"; do
        systemctl is-enabled -q "$svc" 2>/dev/null || systemctl enable -q "$svc" 2>/dev/null ||
            warn "could not enable $svc"
        restart=0
        if ((${#files[@]})) && changed "${files[@]}"; then restart=1; fi
        if ((!restart)) && systemctl is-active -q "$svc"; then
            since=$(systemctl show -p ActiveEnterTimestamp --value "$svc")
            since=$(date -d "$since" +%s 2>/dev/null || echo 0)
            for f in "${files[@]}"; do
                if [[ -f "$f" ]] && (($(stat -c %Y "$f") > since)); then restart=1; fi
            done
        fi
        # Services named in OSA_NO_BLOCK (a Type=notify service such as nova-compute reports ready only once it
        # reaches its peers) are not waited for: svc_check and the steps' own waits judge the result.
        local -a how=()
        [[ " ${OSA_NO_BLOCK:-} " != *" $svc "* ]] || how=(--no-block)
        if ((restart)); then
            log "restarting $svc"
            mark_changed "restarted:$svc"
            systemctl restart "${how[@]}" "$svc" || die "$svc failed to restart: see 'journalctl -u $svc'"
        elif ! systemctl is-active -q "$svc"; then
            log "starting $svc"
            mark_changed "started:$svc"
            systemctl restart "${how[@]}" "$svc" || die "$svc failed to start: see 'journalctl -u $svc'"
        fi
    done
}

# svc_check SERVICE...: die unless each service is running (active, or still activating: a notify service waiting
# for its peers) and stays so for a few seconds (catches crash loops).
svc_check() {
    local svc state n
    for svc in "$@"; do
        # A --no-block restart returns while the old process still stops (nova-compute with instances: tens of s).
        wait_for "$svc to finish stopping" 180 bash -c "[[ \$(systemctl is-active $svc) != deactivating ]]"
        for n in 1 2 3 4 5 6 7 8 9 10; do
            state=$(systemctl is-active "$svc" 2>/dev/null || true)
            [[ "$state" == activating && $n -lt 10 ]] || break
            sleep 2
        done
        sleep 2
        state=$(systemctl is-active "$svc" 2>/dev/null || true)
        case "$state" in
            active) ;;
            activating) log "$svc is still starting (it reports ready once it reaches its peers)" ;;
            *) die "$svc is $state: see 'journalctl -u $svc' and /var/log/*/$svc.log" ;;
        esac
    done
}

# ---------------------------------------------------------------------------------------------------- waiting
# wait_for DESCRIPTION TIMEOUT COMMAND...: run COMMAND every 2 s until it succeeds; die after TIMEOUT seconds.
wait_for() {
    local what=$1 timeout=$2 start=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - start < timeout)) || die "timed out after ${timeout}s waiting for $what"
        sleep 2
    done
}

_osa_port_open() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_port HOST PORT [TIMEOUT]
wait_port() {
    wait_for "$1:$2 to accept connections" "${3:-120}" _osa_port_open "$1" "$2"
}

# wait_http URL [TIMEOUT]: any HTTP answer (even 401/404) means the service is up.
wait_http() {
    wait_for "$1 to answer" "${2:-120}" curl -s -o /dev/null --max-time 5 "$1"
}

# retry TRIES DELAY COMMAND...
retry() {
    local tries=$1 delay=$2 n=1
    shift 2
    until "$@"; do
        ((n < tries)) || return 1
        n=$((n + 1))
        sleep "$delay"
    done
}

# ---------------------------------------------------------------------------------------------------- packages
# Every question that would make a Debian OpenStack package configure a database, RabbitMQ, Keystone
# credentials or endpoints by itself is answered false: the steps own all configuration.
_osa_debconf_answers() {
    local p
    for p in keystone glance nova novaapi neutron cinder placement; do
        printf '%s %s/configure_db boolean false\n' "$p" "$p"
    done
    for p in glance nova neutron cinder; do
        printf '%s %s/configure_rabbit boolean false\n' "$p" "$p"
    done
    for p in glance nova neutron cinder placement; do
        printf '%s %s/configure_ksat boolean false\n' "$p" "$p"
        printf '%s %s/ksat-create-service-user boolean false\n' "$p" "$p"
        printf '%s %s/configure_api-endpoint boolean false\n' "$p" "$p"
    done
    cat <<'EOF'
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
nova-common nova/configure_neutron boolean false
nova-common nova/configure_placement boolean false
neutron-common neutron/configure_nova boolean false
neutron-metadata-agent neutron-metadata/configure boolean false
nova-consoleproxy nova-consoleproxy/daemon_type select novnc
openstack-dashboard-apache horizon/activate_vhost boolean true
openstack-dashboard-apache horizon/use_ssl boolean false
iptables-persistent iptables-persistent/autosave_v4 boolean false
iptables-persistent iptables-persistent/autosave_v6 boolean false
mariadb-server mysql-server/root_password password
EOF
}

_osa_apt_proxy() {
    local conf=/etc/apt/apt.conf.d/01openstack-aws-proxy
    if [[ -n "${APT_PROXY:-}" ]]; then
        write_file "$conf" 0644 <<<"Acquire::http::Proxy \"$APT_PROXY\";"
    elif [[ -e "$conf" ]]; then
        rm -f "$conf"
    fi
}

# Another apt or dpkg (unattended-upgrades, a step on the same node) holds the lock: wait for it, do not fail.
OSA_APT_LOCK=(-o DPkg::Lock::Timeout=600)

# policy_rc_clean: remove a policy-rc.d that an apt_install of a killed run left behind (it would keep every later
# package's invoke-rc.d from starting or restarting a daemon). Only ours, and only when its writer is gone: a
# policy-rc.d without our tag, or one of a step still running, stays.
policy_rc_clean() {
    local pid
    [[ -e "$OSA_POLICY_RC" ]] || return 0
    pid=$(sed -n "s/^$OSA_POLICY_RC_TAG \([0-9]*\)\$/\1/p" "$OSA_POLICY_RC" 2>/dev/null | head -n1)
    [[ -n "$pid" ]] || return 0
    if [[ "$pid" != "$$" ]] && ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$OSA_POLICY_RC"
        warn "removed $OSA_POLICY_RC left by an interrupted run (pid $pid)"
    fi
}

# dpkg_recover: finish what an interrupted dpkg left half-done (a step killed mid-install); apt refuses to install
# anything until "dpkg --configure -a" has run. Called with apt_install's policy-rc.d and debconf answers in place.
dpkg_recover() {
    if [[ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" || -n "$(dpkg --audit 2>/dev/null)" ]]; then
        warn "dpkg was interrupted: running dpkg --configure -a"
        # dpkg itself does not wait for its lock: retry while another dpkg holds it.
        retry 20 15 dpkg --configure -a --force-confdef --force-confold >>"$OSA_APT_LOG" 2>&1 ||
            die "dpkg --configure -a failed: see $OSA_APT_LOG"
        mark_changed dpkg-recovered
    fi
}

_osa_installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep '^install ok installed$' >/dev/null; }

# apt_install PACKAGE...: install what is missing, non-interactively, with the debconf answers above; services
# are not started by the packages (a policy-rc.d denies it), the steps start them once configured.
apt_install() {
    local p missing=()
    for p in "$@"; do _osa_installed "$p" || missing+=("$p"); done
    ((${#missing[@]})) || return 0
    _osa_apt_proxy
    _osa_debconf_answers | debconf-set-selections
    policy_rc_clean
    if [[ ! -e "$OSA_POLICY_RC" ]]; then
        printf '#!/bin/sh\n%s %s\nexit 101\n' "$OSA_POLICY_RC_TAG" "$$" >"$OSA_POLICY_RC"
        chmod 755 "$OSA_POLICY_RC"
        OSA_POLICY_RC_MADE=1
    fi
    dpkg_recover
    log "installing ${missing[*]}"
    local lists_age=999999
    [[ -d /var/lib/apt/lists/partial ]] &&
        lists_age=$(($(date +%s) - $(stat -c %Y /var/lib/apt/lists/partial)))
    if ((lists_age > 3600)) || ! apt-cache show "${missing[0]}" >/dev/null 2>&1; then
        # A stalled mirror or proxy can hang update past any HTTP timeout: a hard limit turns that into a retry.
        retry 3 10 timeout 300 apt-get update -q -o Acquire::http::Timeout=60 "${OSA_APT_LOCK[@]}" || die "apt-get update failed: check the node's route to the Debian mirror (or APT_PROXY)"
    fi
    local apt_log=$OSA_APT_LOG
    if ! retry 3 10 apt-get install -y -q -o Dpkg::Use-Pty=0 -o Acquire::http::Timeout=60 "${OSA_APT_LOCK[@]}" \
        -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold --no-install-recommends "${missing[@]}" >>"$apt_log" 2>&1; then
        tail -n 40 "$apt_log" >&2
        die "apt-get install ${missing[*]} failed: see the apt output above (full log: $apt_log)"
    fi
    if [[ -n "${OSA_POLICY_RC_MADE:-}" ]]; then
        rm -f "$OSA_POLICY_RC"
        OSA_POLICY_RC_MADE=
    fi
    mark_changed packages
}

# ---------------------------------------------------------------------------------------------------- artifacts
# artifact_put NAME FILE / artifact_get NAME FILE: share files between nodes. ARTIFACT_STORE is s3://bucket/prefix
# (boto3 or aws cli, instance role) or dir:<path> (the rig: a directory every node sees).
artifact_put() {
    local name=$1 file=$2
    [[ -r "$file" ]] || die "artifact_put: $file does not exist"
    case "$ARTIFACT_STORE" in
        dir:*)
            local dir=${ARTIFACT_STORE#dir:}
            mkdir -p "$dir"
            cp "$file" "$dir/.$name.tmp" && mv "$dir/.$name.tmp" "$dir/$name"
            ;;
        s3://*)
            local url="${ARTIFACT_STORE%/}/$name"
            if python3 -c 'import boto3' 2>/dev/null; then
                OSA_URL=$url OSA_FILE=$file REGION=${REGION:-} python3 - <<'PY' || die "cannot upload $file to $url"
import os, boto3
bucket, _, key = os.environ["OSA_URL"][5:].partition("/")
boto3.client("s3", region_name=os.environ.get("REGION") or None).upload_file(os.environ["OSA_FILE"], bucket, key)
PY
            else
                aws s3 cp --only-show-errors "$file" "$url" || die "cannot upload $file to $url"
            fi
            ;;
        *) die "ARTIFACT_STORE '$ARTIFACT_STORE' is neither s3://bucket/prefix nor dir:<path>" ;;
    esac
    log "published artifact $name"
}

artifact_get() {
    local name=$1 file=$2
    case "$ARTIFACT_STORE" in
        dir:*)
            local src="${ARTIFACT_STORE#dir:}/$name"
            [[ -r "$src" ]] || return 1
            cp "$src" "$file.tmp" && mv "$file.tmp" "$file"
            ;;
        s3://*)
            local url="${ARTIFACT_STORE%/}/$name"
            if python3 -c 'import boto3' 2>/dev/null; then
                OSA_URL=$url OSA_FILE=$file.tmp REGION=${REGION:-} python3 - 2>/dev/null <<'PY' || return 1
import os, boto3
bucket, _, key = os.environ["OSA_URL"][5:].partition("/")
boto3.client("s3", region_name=os.environ.get("REGION") or None).download_file(bucket, key, os.environ["OSA_FILE"])
PY
            else
                aws s3 cp --only-show-errors "$url" "$file.tmp" 2>/dev/null || return 1
            fi
            mv "$file.tmp" "$file"
            ;;
        *) die "ARTIFACT_STORE '$ARTIFACT_STORE' is neither s3://bucket/prefix nor dir:<path>" ;;
    esac
}

# ---------------------------------------------------------------------------------------------------- misc
# done_marker NAME / mark_done NAME: remember one-time actions across runs.
done_marker() { [[ -e "$OSA_STATE/$1.done" ]]; }
mark_done() { touch "$OSA_STATE/$1.done"; }

# Load the rest of the library when this file is sourced from a checkout (in SSM it is all inlined already).
if [[ "${BASH_SOURCE[0]}" == */lib/common.sh && -z "${OSA_LIB_OPENSTACK:-}" ]]; then
    # shellcheck source=openstack.sh
    . "$(dirname "${BASH_SOURCE[0]}")/openstack.sh"
    for _osa_optional in "$(dirname "${BASH_SOURCE[0]}")"/optional/*.sh; do
        # shellcheck disable=SC1090  # every optional library, as no size limit applies to a checkout
        . "$_osa_optional"
    done
fi

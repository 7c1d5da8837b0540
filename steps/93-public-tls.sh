#!/usr/bin/env bash
# step: public-tls
# roles: controller
# after: keystone, glance, placement, nova-controller, neutron-controller, horizon, cinder-controller, swift-proxy
# timeout: 600
# uses: public, sockets
# inputs: node facts (MGMT_IP, PUBLIC_IP), cluster facts (ELASTIC_IP, ARTIFACT_STORE), artifacts public-tls.crt public-tls.key and, unless the certificate is from a public CA, public-tls-ca.crt (the first run makes them; an operator's own replace them); Apache from the horizon step, openssl from base
# guarantees: Apache terminates TLS on PUBLIC_IP for Horizon (:443) and every public endpoint (:5000 :9292 :8778 :8774 :6080 :9696 :8776 :8080, PUBLIC_TLS) and forwards to http://CONTROLLER_IP; http on PUBLIC_IP:80 redirects to https; each of these ports listens on PUBLIC_IP and MGMT_IP only; the certificate names ELASTIC_IP, stays in the artifact store across rebuilds, and its key (TLS_DIR) is root's only; each port answers https for ELASTIC_IP with it
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars ELASTIC_IP PUBLIC_IP
command -v apache2ctl >/dev/null || die "Apache is missing: the horizon step installs it (openstack-dashboard-apache)"

# Apache can take PUBLIC_IP:PORT only once the service has left "every address" for MGMT_IP (its own step does
# that: on a node installed by an earlier release, that step's re-run).
for entry in "${PUBLIC_TLS[@]}"; do
    read -r port backend step <<<"$entry"
    ((port == backend)) || continue
    others=$(bound_only_to "$port" "$MGMT_IP" "$PUBLIC_IP") ||
        die "port $port listens on ${others% }: re-run step $step (it binds its service to $MGMT_IP), then this one"
done

tls_ensure

# Debian's ports.conf listens on 443 on every address once mod_ssl is on: TLS belongs to PUBLIC_IP only (the site).
# Port 80 stays on every address: Horizon inside the VPC (and through an SSM port forward), the redirect on PUBLIC_IP.
write_file /etc/apache2/ports.conf 0644 <<'EOF'
# openstack-aws (managed by the public-tls step): TLS listens in sites-available/openstack-aws-public.conf
Listen 80
EOF
for mod in ssl proxy proxy_http headers; do
    [[ -e /etc/apache2/mods-enabled/$mod.load ]] && continue
    a2enmod -q "$mod" >/dev/null || die "a2enmod $mod failed"
    mark_changed apache-modules
done
site=/etc/apache2/sites-available/openstack-aws-public.conf
write_file "$site" 0644 < <(public_tls_site)
if [[ ! -e /etc/apache2/sites-enabled/openstack-aws-public.conf ]]; then
    a2ensite -q openstack-aws-public
    mark_changed apache-site
fi
out=$(apache2ctl configtest 2>&1) || die "Apache rejects its configuration: $out"
svc_apply "/etc/apache2/ports.conf $site $TLS_DIR/$TLS_CRT $TLS_DIR/$TLS_KEY apache-modules apache-site" apache2

# Proof from here, as a client sees it: the Elastic IP arrives on PUBLIC_IP, so each port is asked for
# https://ELASTIC_IP:PORT there and must answer with a certificate valid for that name (the store's CA, else the
# system's for a public CA's certificate), and from the service (not the proxy's 502-504 for a backend it cannot
# reach); then nothing but PUBLIC_IP and MGMT_IP holds the port.
ca=()
[[ ! -e "$TLS_DIR/$TLS_CA" ]] || ca=(--cacert "$TLS_DIR/$TLS_CA")
answers() { # PORT
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${ca[@]}" \
        --connect-to "$ELASTIC_IP:$1:$PUBLIC_IP:$1" "https://$ELASTIC_IP:$1/") || return 1
    [[ "$code" != 50[234] ]]
}
for entry in "${PUBLIC_TLS[@]}"; do
    read -r port backend step <<<"$entry"
    wait_for "https://$ELASTIC_IP:$port/ to answer from step $step's service" 60 answers "$port"
    want=("$PUBLIC_IP")
    ((port != backend)) || want+=("$MGMT_IP")
    others=$(bound_only_to "$port" "${want[@]}") || die "port $port listens on ${others% }, not only on ${want[*]}"
done
redirect=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' --max-time 10 -H "Host: $ELASTIC_IP" \
    "http://$PUBLIC_IP/auth/login/")
[[ "$redirect" == "301 https://$ELASTIC_IP/auth/login/" ]] ||
    die "http on $PUBLIC_IP answers '$redirect', not a redirect to https://$ELASTIC_IP/auth/login/"
log "public side ready: https://$ELASTIC_IP/ and the public endpoints, TLS on $PUBLIC_IP"

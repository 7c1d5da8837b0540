#!/usr/bin/env bash
# steps/lib/optional/public.sh: the public side, for the steps that say `# uses: public` (public-tls). Clients
# outside the VPC reach Horizon and the APIs over TLS on the controller's public address (PUBLIC_IP, the Elastic
# IP's), where Apache (step public-tls) terminates it and forwards plain http to the services on the management
# address. So each API listens on MGMT_IP only (Apache binds PUBLIC_IP on the same port; uwsgi_on_mgmt in
# service.sh) and builds its links from the proxy's headers (ini_behind_proxy). Only function definitions and
# constants (see common.sh).
# shellcheck disable=SC2034  # variables set here are used by the steps

# The one list of the public side, an entry per port: "PUBLIC_PORT BACKEND_PORT STEP". Apache serves TLS on
# PUBLIC_IP:PUBLIC_PORT and forwards to http://CONTROLLER_IP:BACKEND_PORT, where STEP's service listens.
PUBLIC_TLS=("443 80 horizon" "5000 5000 keystone" "9292 9292 glance" "8778 8778 placement"
    "8774 8774 nova-controller" "6080 6080 nova-controller" "9696 9696 neutron-controller"
    "8776 8776 cinder-controller" "8080 8080 swift-proxy")

# The certificate's names in the artifact store (S3 in the project's bucket on AWS, a folder in the rig: it
# outlives a rebuild) and on the controller: the server's certificate (with any intermediates), its key, and the CA
# clients trust (absent for a certificate from a public CA).
TLS_CRT=public-tls.crt TLS_KEY=public-tls.key TLS_CA=public-tls-ca.crt
TLS_DIR=$OSA_ETC/tls

# tls_make DIR: a new CA and a server certificate it signs into DIR (EC P-256, 10 years), naming the Elastic IP
# (what clients connect to) and PUBLIC_IP (the address it maps to). The CA's key signs this one certificate and is
# thrown away, so a client that trusts the CA trusts nothing else.
tls_make() {
    local dir=$1 ca err
    ca=$(mktemp -d "$OSA_RUN/ca.XXXXXX")
    err=$({
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -days 3650 -keyout "$ca/key" \
            -out "$dir/$TLS_CA" -subj "/CN=openstack-aws $ELASTIC_IP CA" \
            -addext basicConstraints=critical,CA:TRUE,pathlen:0 -addext keyUsage=critical,keyCertSign,cRLSign &&
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc -keyout "$dir/$TLS_KEY" \
                -out "$ca/csr" -subj "/CN=$ELASTIC_IP" &&
            openssl x509 -req -in "$ca/csr" -CA "$dir/$TLS_CA" -CAkey "$ca/key" -days 3650 \
                -set_serial "0x$(openssl rand -hex 16)" -out "$dir/$TLS_CRT" -extfile <(printf '%s\n' \
                "subjectAltName = IP:$ELASTIC_IP, IP:$PUBLIC_IP" "basicConstraints = critical, CA:FALSE" \
                "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth")
    } 2>&1 >/dev/null) || { rm -rf "$ca"; die "openssl could not make the public certificate: $err"; }
    rm -rf "$ca"
    mark_changed tls:made
    log "made a CA and a certificate for $ELASTIC_IP and $PUBLIC_IP"
}

# tls_problem DIR: what is wrong with DIR's certificate and key for this cloud, or nothing.
tls_problem() {
    local crt=$1/$TLS_CRT ours theirs
    ours=$(openssl pkey -pubout -passin pass: -in "$1/$TLS_KEY" 2>&1) || true
    theirs=$(openssl x509 -noout -pubkey -in "$crt" 2>&1) || true
    if [[ "$ours" != "$theirs" ]]; then
        echo "$TLS_KEY is not the key of $TLS_CRT (or either is not PEM, or the key has a passphrase)"
    elif [[ "$(openssl x509 -noout -checkip "$ELASTIC_IP" -in "$crt")" != *" does match "* ]]; then
        echo "$TLS_CRT does not name $ELASTIC_IP (an IP subjectAltName): clients connect to the Elastic IP"
    elif ! openssl x509 -noout -checkend 0 -in "$crt" >/dev/null; then
        echo "$TLS_CRT has expired"
    fi
}

# tls_fetch DIR: the store's key and certificate into DIR; false when either cannot be read.
tls_fetch() { artifact_get "$TLS_KEY" "$1/$TLS_KEY" && artifact_get "$TLS_CRT" "$1/$TLS_CRT"; }

# tls_ensure: the certificate of the artifact store, else a new one put there (made once: a rebuilt controller, or
# a later run, finds it again); checked, then installed in TLS_DIR, the key for root only. An operator's own
# certificate replaces the store's files (steps/README.md, "TLS on the public side"). S3 answers a missing object
# like a denied one (the node role may not list the bucket): three tries before a read error counts as "none".
tls_ensure() {
    local work problem
    work=$(mktemp -d "$OSA_RUN/tls.XXXXXX") # 0700, like OSA_RUN: the key never sits where others can read it
    if retry 3 5 tls_fetch "$work"; then
        artifact_get "$TLS_CA" "$work/$TLS_CA" || rm -f "$work/$TLS_CA"
        log "public certificate from $ARTIFACT_STORE"
    else
        tls_make "$work"
        artifact_put "$TLS_CA" "$work/$TLS_CA"
        artifact_put "$TLS_KEY" "$work/$TLS_KEY"
        artifact_put "$TLS_CRT" "$work/$TLS_CRT" # last: without it a later run makes a new pair
    fi
    problem=$(tls_problem "$work")
    if [[ -z "$problem" ]]; then
        install -d -m 0755 "$TLS_DIR"
        write_file "$TLS_DIR/$TLS_KEY" 0600 <"$work/$TLS_KEY"
        write_file "$TLS_DIR/$TLS_CRT" 0644 <"$work/$TLS_CRT"
        if [[ -e "$work/$TLS_CA" ]]; then
            write_file "$TLS_DIR/$TLS_CA" 0644 <"$work/$TLS_CA"
        elif [[ -e "$TLS_DIR/$TLS_CA" ]]; then
            rm -f "$TLS_DIR/$TLS_CA"
            mark_changed "$TLS_DIR/$TLS_CA"
        fi
    fi
    rm -rf "$work"
    [[ -z "$problem" ]] || die "the public certificate in $ARTIFACT_STORE: $problem"
}

# public_tls_site: Apache's public side from PUBLIC_TLS: on PUBLIC_IP:80 only a redirect to https (inside the VPC,
# http://CONTROLLER_IP/ stays Horizon), on each PUBLIC_IP:PUBLIC_PORT TLS forwarded to CONTROLLER_IP:BACKEND_PORT.
public_tls_site() {
    local entry port backend
    cat <<EOF
# openstack-aws (managed by the public-tls step, from PUBLIC_TLS in steps/lib/optional/public.sh)
# Headers a client could send to change the scheme, host, address or prefix the backends see are dropped; the
# proxy sets them. LimitRequestBody 0: images and objects exceed Apache's 1 GiB default (the services have their
# own limits). upgrade=websocket: noVNC's console. ServerName: no reverse DNS lookup of PUBLIC_IP.
SSLProtocol -all +TLSv1.2 +TLSv1.3
<VirtualHost $PUBLIC_IP:80>
    ServerName $ELASTIC_IP
    <Location "/">
        Redirect permanent "https://%{SERVER_NAME}%{REQUEST_URI}"
    </Location>
</VirtualHost>
EOF
    for entry in "${PUBLIC_TLS[@]}"; do
        read -r port backend _ <<<"$entry"
        cat <<EOF
Listen $PUBLIC_IP:$port
<VirtualHost $PUBLIC_IP:$port>
    ServerName $ELASTIC_IP
    SSLEngine on
    SSLCertificateFile $TLS_DIR/$TLS_CRT
    SSLCertificateKeyFile $TLS_DIR/$TLS_KEY
    LimitRequestBody 0
    RequestHeader unset Forwarded early
    RequestHeader unset X-Forwarded-For early
    RequestHeader unset X-Forwarded-Host early
    RequestHeader unset X-Forwarded-Prefix early
    RequestHeader set X-Forwarded-Proto https
    ProxyPreserveHost On
    ProxyPass / http://$CONTROLLER_IP:$backend/ upgrade=websocket
    ProxyPassReverse / http://$CONTROLLER_IP:$backend/
</VirtualHost>
EOF
    done
}

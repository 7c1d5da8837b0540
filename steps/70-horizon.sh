#!/usr/bin/env bash
# step: horizon
# roles: controller
# after: keystone
# timeout: 1200
# inputs: node facts (PUBLIC_IP), cluster facts (CONTROLLER_IP, ELASTIC_IP)
# guarantees: openstack-dashboard under Apache on :80 (Debian's vhost, dashboard at /), for this Keystone (internal URL) and every service through its internal endpoint, sessions in memcached for every Apache process (Debian's LocMemCache snippet overridden, checked in the loaded settings), ALLOWED_HOSTS = Elastic IP, management and public addresses; https behind the public-tls step's proxy (X-Forwarded-Proto), http inside the VPC
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller
require_vars ELASTIC_IP

apt_install openstack-dashboard-apache python3-pymemcache

settings=/etc/openstack-dashboard/local_settings.py
[[ -e "$settings" ]] || die "$settings is missing: the openstack-dashboard package did not install completely"
hosts="'$ELASTIC_IP', '$CONTROLLER_IP', 'localhost', '127.0.0.1'"
[[ -z "${PUBLIC_IP:-}" ]] || hosts+=", '$PUBLIC_IP'"
block=$(
    cat <<EOF2
# BEGIN openstack-aws (managed by the horizon step; later assignments win)
OPENSTACK_HOST = "$CONTROLLER_IP"
OPENSTACK_KEYSTONE_URL = "http://%s:5000/v3" % OPENSTACK_HOST
# Horizon runs inside the VPC: after login it must use the internal endpoints (the public ones name the Elastic
# IP, which the controller cannot reach through the VPC).
OPENSTACK_ENDPOINT_TYPE = "internalURL"
ALLOWED_HOSTS = [$hosts]
OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False
OPENSTACK_API_VERSIONS = {"identity": 3, "image": 2, "volume": 3}
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
OPENSTACK_NEUTRON_NETWORK = {"enable_router": True, "enable_quotas": True, "enable_ipv6": True,
                             "enable_distributed_router": False, "enable_ha_router": False,
                             "enable_fip_topology_check": True}
TIME_ZONE = "UTC"
# From outside, Horizon is https://ELASTIC_IP/: the public-tls step's proxy forwards to http://CONTROLLER_IP/ and
# sets this header (a client's own is replaced), so Django sees https there (CSRF's origin check, absolute URLs);
# inside the VPC no proxy sets it and Horizon stays plain http.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# END openstack-aws
EOF2
)
# Replace the managed block (or append it), keeping the package's file otherwise as it is.
write_file "$settings" 0644 < <(
    sed '/^# BEGIN openstack-aws/,/^# END openstack-aws/d' "$settings"
    printf '%s\n' "$block"
)

# Sessions live in memcached, shared by every Apache process that serves the dashboard. Debian's snippet
# local_settings.d/_0006_debian_cache.py sets a per-process LocMemCache and is read after local_settings.py, so a
# session existed only in the process that logged the user in and every other one sent them back to the login
# page; a snippet sorted after it wins. PyMemcacheCache: Django 4.2 (Debian 13) has no MemcachedCache, 3.2 has both.
write_file /etc/openstack-dashboard/local_settings.d/_9999_openstack_aws.py 0644 <<EOF2
# openstack-aws (managed by the horizon step): sessions in memcached, for every process.
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
                      "LOCATION": "$CONTROLLER_IP:11211"}}
EOF2

# One Python interpreter for the dashboard, whatever the Host header. mod_wsgi gives each server name its own
# sub-interpreter by default, and Debian 13's cryptography (a PyO3 module) loads in one only: the second name's
# requests got HTTP 500 ("PyO3 modules ... may only be initialized once per interpreter process").
write_file /etc/apache2/conf-available/openstack-aws-dashboard.conf 0644 <<<'WSGIApplicationGroup %{GLOBAL}'
if [[ ! -e /etc/apache2/conf-enabled/openstack-aws-dashboard.conf ]]; then
    a2enconf -q openstack-aws-dashboard
    mark_changed apache-conf
fi
# Debian's vhost serves the dashboard at / on port 80; make sure it is the enabled site.
if [[ -e /etc/apache2/sites-enabled/000-default.conf ]]; then a2dissite -q 000-default; mark_changed apache-site; fi
if [[ ! -e /etc/apache2/sites-enabled/openstack-dashboard.conf ]]; then
    a2ensite -q openstack-dashboard
    mark_changed apache-site
fi
svc_apply "$settings /etc/openstack-dashboard/local_settings.d/_9999_openstack_aws.py apache-site apache-conf /etc/apache2/conf-available/openstack-aws-dashboard.conf packages" apache2
# What Django ends up with after every snippet, as the dashboard's processes load it: as www-data, since loading
# the settings creates Horizon's secret key file when it is missing, and a root-owned one answers every page with
# HTTP 500 (as after any `manage.py` run as root, which the ownership repair below also undoes).
key_store=/var/lib/openstack-dashboard/secret-key/.secret_key_store
if [[ -e "$key_store" && "$(stat -c %U "$key_store")" != www-data ]]; then
    chown www-data:www-data "$key_store"
    mark_changed "$key_store:owner"
    log "$key_store given back to www-data"
fi
backend=$(cd /usr/share/openstack-dashboard && runuser -u www-data -- env DJANGO_SETTINGS_MODULE=openstack_dashboard.settings python3 -W ignore -c \
    'from django.conf import settings as s; print(s.CACHES["default"]["BACKEND"], s.SESSION_ENGINE)') ||
    die "cannot load the dashboard's settings (see /var/log/openstack-dashboard/error.log)"
[[ "$backend" == "django.core.cache.backends.memcached.PyMemcacheCache django.contrib.sessions.backends.cache" ]] ||
    die "the dashboard's sessions are not in memcached ($backend): a snippet in /etc/openstack-dashboard/local_settings.d overrides CACHES"
wait_http "http://$CONTROLLER_IP/" 60
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Host: $ELASTIC_IP" "http://$CONTROLLER_IP/auth/login/")
[[ "$code" == 200 ]] || die "the dashboard's login page answers HTTP $code (see /var/log/openstack-dashboard/error.log)"
log "horizon ready: http://$CONTROLLER_IP/ inside the VPC (https://$ELASTIC_IP/ through public-tls)"

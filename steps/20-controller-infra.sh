#!/usr/bin/env bash
# step: controller-infra
# roles: controller
# after: datapath
# timeout: 1800
# uses: sockets
# inputs: node facts (MGMT_IP), cluster facts, secrets DB_ROOT_PASS RABBIT_PASS
# guarantees: MariaDB on MGMT_IP:3306 (99-openstack.cnf; root: unix_socket or DB_ROOT_PASS), RabbitMQ with user openstack (RABBIT_PASS, all permissions) on MGMT_IP:5672, its distribution port on MGMT_IP:25672 and epmd on 127.0.0.1 and MGMT_IP:4369, memcached on MGMT_IP:11211, each listening nowhere else; no etcd (nothing uses it: an earlier release's is purged)
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller

apt_install mariadb-server python3-pymysql rabbitmq-server memcached python3-memcache

# --- MariaDB (the install guide's settings), root keeps unix_socket and gets DB_ROOT_PASS for TCP clients.
write_file /etc/mysql/mariadb.conf.d/99-openstack.cnf 0644 <<EOF2
[mysqld]
bind-address = $MGMT_IP
default-storage-engine = innodb
innodb_file_per_table = on
max_connections = 4096
collation-server = utf8_general_ci
character-set-server = utf8
EOF2
svc_apply "/etc/mysql/mariadb.conf.d/99-openstack.cnf" mariadb
wait_for "MariaDB" 60 mysql_root -e 'SELECT 1'
load_secrets DB_ROOT_PASS RABBIT_PASS
# Compared with the secret's (on stdin), so a rotated DB_ROOT_PASS is applied too; Debian's root has "invalid".
root_ok=$(mysql_root -N <<SQL
SELECT JSON_VALUE(Priv, '\$.authentication_string') = PASSWORD('$DB_ROOT_PASS') FROM mysql.global_priv
    WHERE User = 'root' AND Host = 'localhost';
SQL
)
if [[ "$root_ok" != 1 ]]; then
    mysql_root <<SQL || die "could not set the MariaDB root password"
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$DB_ROOT_PASS');
SQL
    mark_changed database:root
    log "MariaDB root: unix_socket or the secret's password"
fi
# The guide's mysql_secure_installation: no anonymous users, no test database.
if [[ -n "$(mysql_root -N -e "SELECT 1 FROM mysql.user WHERE User='' LIMIT 1")" ]] ||
    [[ -n "$(mysql_root -N -e "SHOW DATABASES LIKE 'test'")" ]]; then
    mysql_root -e "DELETE FROM mysql.global_priv WHERE User=''; DROP DATABASE IF EXISTS test; FLUSH PRIVILEGES;"
fi

# --- RabbitMQ on the management address only: AMQP, the Erlang distribution port, and epmd (its port mapper,
# socket-activated by systemd on every address unless told otherwise). epmd keeps loopback, where the node
# registers; rabbitmqctl finds the node through the host name, i.e. MGMT_IP (/etc/hosts).
write_file /etc/rabbitmq/rabbitmq.conf 0644 <<EOF2
listeners.tcp.default = $MGMT_IP:5672
distribution.listener.interface = $MGMT_IP
EOF2
epmd_dropin=/etc/systemd/system/epmd.socket.d/openstack-aws.conf
mkdir -p "${epmd_dropin%/*}"
write_file "$epmd_dropin" 0644 <<EOF2
[Socket]
ListenStream=
ListenStream=127.0.0.1:4369
ListenStream=$MGMT_IP:4369
FreeBind=true
EOF2
if changed "$epmd_dropin" || [[ $(systemctl show -p NeedDaemonReload --value epmd.socket) == yes ]] ||
    ! bound_only_to 4369 127.0.0.1 "$MGMT_IP" >/dev/null; then
    # Also after a killed run that wrote the drop-in only. RabbitMQ's ExecStop (rabbitmqctl stop) finds the node
    # through epmd: it stops before epmd moves (svc_apply starts it again); epmd.service requires the socket, so
    # restarting the socket restarts epmd.
    systemctl daemon-reload
    systemctl stop rabbitmq-server
    systemctl restart epmd.socket || die "epmd.socket failed to restart: see 'journalctl -u epmd.socket'"
    mark_changed restarted:epmd.socket
fi
# --- user openstack with the secret's password (a rotated one is set: the services' transport_url follows in their
# own steps); rabbitmqctl reads a password it is not given as an argument from stdin (not with -q: RabbitMQ 4's
# rabbitmqctl then waits forever).
svc_apply "/etc/rabbitmq/rabbitmq.conf $epmd_dropin" rabbitmq-server
wait_for "RabbitMQ" 120 rabbitmqctl -q status
if ! rabbitmqctl -q list_users | awk '{print $1}' | grep -x openstack >/dev/null; then
    printf '%s\n' "$RABBIT_PASS" | rabbitmqctl add_user openstack >/dev/null ||
        die "rabbitmqctl add_user openstack failed: see /var/log/rabbitmq"
    mark_changed rabbitmq:openstack
    log "RabbitMQ user openstack created"
elif ! printf '%s\n' "$RABBIT_PASS" | rabbitmqctl authenticate_user openstack >/dev/null 2>&1; then
    printf '%s\n' "$RABBIT_PASS" | rabbitmqctl change_password openstack >/dev/null ||
        die "rabbitmqctl change_password openstack failed: see /var/log/rabbitmq"
    mark_changed rabbitmq:openstack:password
    log "RabbitMQ user openstack: password set to the secret's (it had another)"
fi
if ! rabbitmqctl -q list_user_permissions openstack | grep -E '^/\s+\.\*\s+\.\*\s+\.\*' >/dev/null; then
    rabbitmqctl -q set_permissions openstack ".*" ".*" ".*" >/dev/null
    mark_changed rabbitmq:openstack:permissions
    log "RabbitMQ permissions for openstack set"
fi

# --- memcached on the management address, and on no other (Debian 13's file adds "-l ::1").
set_line /etc/memcached.conf '^-l ' "-l $MGMT_IP"
if grep -vxF -- "-l $MGMT_IP" /etc/memcached.conf | grep -q '^-l '; then
    sed -i "/^-l /{/^-l ${MGMT_IP//./\\.}\$/!d}" /etc/memcached.conf
    mark_changed /etc/memcached.conf
fi
svc_apply "/etc/memcached.conf" memcached

# --- etcd: the install guide's coordination store, which nothing here uses (no [coordination] backend_url), and
# its peer port listened on every address. An earlier release's is purged with its data, in any dpkg state. No
# policy-rc.d: the package's prerm must stop the service.
etcd_state=$(dpkg-query -W -f='${db:Status-Status}' etcd-server 2>/dev/null || true)
if [[ -n "$etcd_state" && "$etcd_state" != not-installed ]]; then
    dpkg_recover
    apt-get purge -y -q -o Dpkg::Use-Pty=0 "${OSA_APT_LOCK[@]}" etcd-server >>"$OSA_APT_LOG" 2>&1 ||
        die "apt-get purge etcd-server failed: see $OSA_APT_LOG"
    mark_changed purged:etcd-server
    log "etcd-server purged (was $etcd_state): nothing uses it"
fi

wait_port "$MGMT_IP" 3306 60
wait_port "$MGMT_IP" 5672 120
wait_port "$MGMT_IP" 11211 30
svc_check mariadb rabbitmq-server memcached
# The guarantees, checked on the sockets: a listener anywhere else (a default left somewhere) stops the step.
for check in "3306 $MGMT_IP" "5672 $MGMT_IP" "25672 $MGMT_IP" "11211 $MGMT_IP" "4369 127.0.0.1 $MGMT_IP"; do
    read -r -a want <<<"$check"
    others=$(bound_only_to "${want[@]}") || die "port ${want[0]} listens on ${others% }, not only on ${want[*]:1}"
done
log "controller infrastructure ready"

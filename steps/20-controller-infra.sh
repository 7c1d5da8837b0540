#!/usr/bin/env bash
# step: controller-infra
# roles: controller
# after: base
# timeout: 1800
# inputs: node facts (MGMT_IP), cluster facts, secrets DB_ROOT_PASS RABBIT_PASS
# guarantees: MariaDB on MGMT_IP:3306 (99-openstack.cnf), RabbitMQ with user openstack (all permissions), memcached on MGMT_IP:11211, etcd on MGMT_IP:2379
set -euo pipefail
# shellcheck source=lib/common.sh
[[ -n "${OSA_LIB_COMMON:-}" ]] || . "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
step_begin
require_role controller

apt_install mariadb-server python3-pymysql rabbitmq-server memcached python3-memcache etcd-server

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
root_auth=$(mysql_root -N -e "SELECT JSON_VALUE(Priv, '\$.authentication_string') FROM mysql.global_priv WHERE User='root' AND Host='localhost'")
if [[ -z "$root_auth" || "$root_auth" == invalid ]]; then
    load_secrets DB_ROOT_PASS
    mysql_root <<SQL || die "could not set the MariaDB root password"
ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$DB_ROOT_PASS');
SQL
    log "MariaDB root: unix_socket or password"
fi
# The guide's mysql_secure_installation: no anonymous users, no test database.
if [[ -n "$(mysql_root -N -e "SELECT 1 FROM mysql.user WHERE User='' LIMIT 1")" ]] ||
    [[ -n "$(mysql_root -N -e "SHOW DATABASES LIKE 'test'")" ]]; then
    mysql_root -e "DELETE FROM mysql.global_priv WHERE User=''; DROP DATABASE IF EXISTS test; FLUSH PRIVILEGES;"
fi

# --- RabbitMQ: user openstack; the password goes to rabbitmqctl on stdin.
svc_apply "" rabbitmq-server
wait_for "RabbitMQ" 120 rabbitmqctl -q status
if ! rabbitmqctl -q list_users | awk '{print $1}' | grep -x openstack >/dev/null; then
    load_secrets RABBIT_PASS
    printf '%s\n' "$RABBIT_PASS" | rabbitmqctl -q add_user openstack >/dev/null ||
        die "rabbitmqctl add_user openstack failed: see /var/log/rabbitmq"
    log "RabbitMQ user openstack created"
fi
if ! rabbitmqctl -q list_user_permissions openstack | grep -E '^/\s+\.\*\s+\.\*\s+\.\*' >/dev/null; then
    rabbitmqctl -q set_permissions openstack ".*" ".*" ".*" >/dev/null
    log "RabbitMQ permissions for openstack set"
fi

# --- memcached on the management address.
set_line /etc/memcached.conf '^-l ' "-l $MGMT_IP"
svc_apply "/etc/memcached.conf" memcached

# --- etcd (the guide's single-member cluster on the management address).
write_file /etc/default/etcd 0644 <<EOF2
ETCD_NAME="controller"
ETCD_DATA_DIR="/var/lib/etcd"
ETCD_INITIAL_CLUSTER_STATE="new"
ETCD_INITIAL_CLUSTER_TOKEN="etcd-cluster-01"
ETCD_INITIAL_CLUSTER="controller=http://$MGMT_IP:2380"
ETCD_INITIAL_ADVERTISE_PEER_URLS="http://$MGMT_IP:2380"
ETCD_ADVERTISE_CLIENT_URLS="http://$MGMT_IP:2379"
ETCD_LISTEN_PEER_URLS="http://0.0.0.0:2380"
ETCD_LISTEN_CLIENT_URLS="http://$MGMT_IP:2379"
EOF2
svc_apply "/etc/default/etcd" etcd

wait_port "$MGMT_IP" 3306 60
wait_port "$MGMT_IP" 5672 120
wait_port "$MGMT_IP" 11211 30
wait_port "$MGMT_IP" 2379 60
svc_check mariadb rabbitmq-server memcached etcd
log "controller infrastructure ready"

#!/usr/bin/env bash
# First boot of every node (cloud-init runs this once). The stack prepends the variables below, per node:
#   NODE_NAME ROLE PREFIX REGION CONTROLLER_IP ELASTIC_IP HOSTS_BLOCK COMPUTE_IPS BLOCK_IPS OBJECT_IPS
#   PROVIDER_CIDR PROVIDER_GW SECRET_ARN ARTIFACT_BUCKET PACKAGES PROBE_IP NAT_FOR_SUBNET_A
# It writes the node facts the steps read, pins interface names to ENI roles by MAC, installs the SSM agent and
# prefetches the role's packages; cloud-init then reboots once so the pinned names and networkd config apply.
set -euo pipefail
exec > >(tee -a /var/log/openstack-aws-userdata.log) 2>&1
: "${NODE_NAME:?}" "${ROLE:?}" "${PREFIX:?}" "${REGION:?}" "${CONTROLLER_IP:?}" "${ELASTIC_IP:?}" "${HOSTS_BLOCK:?}"
: "${COMPUTE_IPS=}" "${BLOCK_IPS=}" "${OBJECT_IPS=}" "${PROVIDER_CIDR:?}" "${PROVIDER_GW:?}" "${SECRET_ARN:?}"
: "${ARTIFACT_BUCKET:?}" "${PACKAGES=}" "${PROBE_IP:?}" "${NAT_FOR_SUBNET_A:=false}"
FACTS=/etc/openstack-aws
# Pinned names the kernel never hands out, so a rename can never collide with an ensN/ethN it assigns.
declare -A PINNED=([0]=mgmt0 [1]=prov0 [2]=pub0)

# RabbitMQ binds its node name to the hostname: set it before any package is installed.
hostnamectl set-hostname "$NODE_NAME"
cat > /etc/cloud/cloud.cfg.d/98-openstack-aws.cfg <<'EOF'
preserve_hostname: true
manage_etc_hosts: false
EOF
sed -i '/# openstack-aws begin/,/# openstack-aws end/d' /etc/hosts
printf '# openstack-aws begin\n%b# openstack-aws end\n' "$HOSTS_BLOCK" >> /etc/hosts

imds_token=$(curl -sfX PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 600')
imds() { curl -sf -H "X-aws-ec2-metadata-token: $imds_token" "http://169.254.169.254/latest/meta-data/$1"; }

# The ENI's device index, not the kernel's name, says which role an interface has.
mkdir -p "$FACTS" /etc/systemd/network
facts="ROLE=$ROLE
NODE_NAME=$NODE_NAME"
for mac in $(imds network/interfaces/macs/ | tr -d /); do
  index=$(imds "network/interfaces/macs/$mac/device-number")
  name=${PINNED[$index]:?device index $index has no role}
  # The first address is the ENI's primary; the provider ENI's others are the floating IP pool.
  addresses=$(imds "network/interfaces/macs/$mac/local-ipv4s")
  address=$(head -n1 <<<"$addresses")
  cidr=$(imds "network/interfaces/macs/$mac/subnet-ipv4-cidr-block")
  gateway=$(python3 -c 'import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[1])' "$cidr")
  printf '[Match]\nPermanentMACAddress=%s\n[Link]\nName=%s\n' "$mac" "$name" > "/etc/systemd/network/10-osa-$name.link"
  case $index in
    0) facts+="
MGMT_IF=$name
MGMT_MAC=$mac
MGMT_IP=$address
MGMT_CIDR=$cidr
MGMT_GW=$gateway"
       printf '[Match]\nName=%s\n[Network]\nDHCP=ipv4\n[DHCPv4]\nUseHostname=false\n' "$name" > /etc/systemd/network/05-osa-mgmt0.network ;;
    1) facts+="
PROVIDER_IF=$name
PROVIDER_MAC=$mac
PROVIDER_ENI_IP=$address
FLOATING_IPS=\"$(tail -n +2 <<<"$addresses" | paste -sd ' ')\""
       # The provider interface carries Neutron's bridge: up, no address of its own.
       printf '[Match]\nName=%s\n[Link]\nRequiredForOnline=no\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n' "$name" > /etc/systemd/network/05-osa-prov0.network ;;
    2) facts+="
PUBLIC_IF=$name
PUBLIC_MAC=$mac
PUBLIC_IP=$address
PUBLIC_CIDR=$cidr
PUBLIC_GW=$gateway"
       # Replies from the Elastic IP's address must leave by this ENI (the VPC drops them on another one).
       printf '[Match]\nName=%s\n[Network]\nAddress=%s/%s\n[Route]\nGateway=%s\nTable=200\n[RoutingPolicyRule]\nFrom=%s\nTable=200\n' \
         "$name" "$address" "${cidr#*/}" "$gateway" "$address" > /etc/systemd/network/05-osa-pub0.network ;;
  esac
done

# Data disks: every disk but the one holding /, by stable id (NVMe names are not stable across boots).
root_disk=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)")
data_disks=""
for disk in $(lsblk -dnpo NAME,TYPE | awk '$2 == "disk" {print $1}'); do
  [[ $disk == "/dev/$root_disk" ]] && continue
  serial=$(lsblk -dno SERIAL "$disk" | tr -d ' ')
  data_disks+="${data_disks:+ }/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$serial"
done

printf '%s\nDATA_DISKS="%s"\n' "$facts" "$data_disks" > "$FACTS/node.env"
cat > "$FACTS/cluster.env" <<EOF
PREFIX=$PREFIX
REGION=$REGION
CONTROLLER_IP=$CONTROLLER_IP
ELASTIC_IP=$ELASTIC_IP
COMPUTE_IPS="$COMPUTE_IPS"
BLOCK_IPS="$BLOCK_IPS"
OBJECT_IPS="$OBJECT_IPS"
PROVIDER_CIDR=$PROVIDER_CIDR
PROVIDER_GW=$PROVIDER_GW
SECRET_SOURCE=secretsmanager:$SECRET_ARN
ARTIFACT_STORE=s3://$ARTIFACT_BUCKET/artifacts
TEST_IMAGE_URL=https://download.cirros-cloud.net/0.6.2/cirros-0.6.2-x86_64-disk.img
APT_PROXY=
PROBE_IP=$PROBE_IP
EOF
chmod 0644 "$FACTS"/*.env

# The network fix changes the provider interface's MAC; cloud-init must not rewrite networking on later boots.
echo 'network: {config: disabled}' > /etc/cloud/cloud.cfg.d/99-custom-networking.cfg
rm -f /etc/netplan/50-cloud-init.yaml /etc/network/interfaces.d/50-cloud-init
systemctl enable systemd-networkd

if [[ $ROLE == controller && $NAT_FOR_SUBNET_A == true ]]; then
  # management_egress=none: the controller is subnet A's way out, through its public ENI.
  mkdir -p /etc/systemd/network/05-osa-pub0.network.d
  printf '[Route]\nGateway=%s\nMetric=50\n' "$(awk -F= '$1=="PUBLIC_GW"{print $2}' "$FACTS/node.env")" \
    > /etc/systemd/network/05-osa-pub0.network.d/10-default-route.conf
  echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/60-osa-nat.conf
  DEBIAN_FRONTEND=noninteractive apt-get install -y iptables-persistent
  iptables -t nat -C POSTROUTING -o pub0 -j MASQUERADE 2>/dev/null || iptables -t nat -A POSTROUTING -o pub0 -j MASQUERADE
  iptables-save > /etc/iptables/rules.v4
fi

# Debian's AMIs have no SSM agent: install it from the region's official bucket, retrying while egress comes up.
agent_url="https://s3.$REGION.amazonaws.com/amazon-ssm-$REGION/latest/debian_amd64/amazon-ssm-agent.deb"
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  curl -sfo /tmp/amazon-ssm-agent.deb "$agent_url" && break
  echo "SSM agent download failed (attempt $attempt); retrying in 30 s"; sleep 30
done
dpkg -i /tmp/amazon-ssm-agent.deb
# Online only after the reboot below: a step sent now would be cut off by it (the install waits for Online).
systemctl enable amazon-ssm-agent
systemctl stop amazon-ssm-agent

# Prefetch only (download, no install): the install steps then do not wait on the network.
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3 4 5; do apt-get update && break; sleep 30; done
read -ra packages <<< "$PACKAGES"
apt-get install -y --download-only "${packages[@]}" || echo "prefetch incomplete; the install steps will download the rest"
echo "userdata done for $NODE_NAME ($ROLE); rebooting to apply pinned interface names"

#!/usr/bin/env bash
# First boot of every node (cloud-init runs this once). The stack prepends the variables below, per node:
#   NODE_NAME ROLE PREFIX REGION CONTROLLER_IP ELASTIC_IP HOSTS_BLOCK COMPUTE_IPS BLOCK_IPS OBJECT_IPS
#   PROVIDER_CIDR PROVIDER_GW SECRET_ARN ARTIFACT_BUCKET PACKAGES PROBE_IP VPC_DNS PROBE_NAME NAT_FOR_SUBNET_A
#   OS_RELEASE [SSM_AGENT_URL]
# It writes the node facts the steps read, pins interface names to ENI roles by MAC, installs the SSM agent and
# prefetches the role's packages; cloud-init then reboots once so the pinned names and networkd config apply.
set -euo pipefail
exec > >(tee -a /var/log/openstack-aws-userdata.log) 2>&1
: "${NODE_NAME:?}" "${ROLE:?}" "${PREFIX:?}" "${REGION:?}" "${CONTROLLER_IP:?}" "${ELASTIC_IP:?}" "${HOSTS_BLOCK:?}"
: "${COMPUTE_IPS=}" "${BLOCK_IPS=}" "${OBJECT_IPS=}" "${PROVIDER_CIDR:?}" "${PROVIDER_GW:?}" "${SECRET_ARN:?}"
: "${ARTIFACT_BUCKET:?}" "${PACKAGES=}" "${PROBE_IP:?}" "${VPC_DNS:?}" "${PROBE_NAME=}" "${NAT_FOR_SUBNET_A:=false}"
: "${OS_RELEASE:?}"

# Release check: the AMI must be the Debian release the stack names (config os_release). Every package list and
# step depends on it, so a mismatch stops here, before this node is changed at all.
# shellcheck source=/dev/null
ami_release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}") || ami_release=
if [[ $ami_release != "$OS_RELEASE" ]]; then
  found=${ami_release:-unknown}
  echo "openstack-aws userdata: this AMI is Debian '$found' (VERSION_CODENAME in /etc/os-release), but the" \
    "stack's os_release is '$OS_RELEASE'. Stopped before changing this node; it will not come Online. Fix the" \
    "configuration: os_release=$found to match the AMI, or ami_id=<a Debian $OS_RELEASE AMI> (on a deployed" \
    "cloud, then openstack-aws rebuild replaces the root volumes from it)." >&2
  exit 1
fi
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

export DEBIAN_FRONTEND=noninteractive
# The AMI's unattended-upgrades and apt timers may hold apt's and dpkg's locks for minutes: wait for them.
apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
# retry TRIES PAUSE WHAT COMMAND...: bounded retries, each failure logged with what is awaited.
retry() {
  local tries=$1 pause=$2 what=$3 attempt
  shift 3
  for ((attempt = 1; attempt <= tries; attempt++)); do
    "$@" && return 0
    echo "$what: attempt $attempt of $tries failed"
    if ((attempt < tries)); then sleep "$pause"; fi
  done
  return 1
}

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
       # KeepMaster: Neutron enslaves it to its provider bridge; a networkd restart must not take it back out.
       printf '[Match]\nName=%s\n[Link]\nRequiredForOnline=no\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\nKeepMaster=yes\n' "$name" > /etc/systemd/network/05-osa-prov0.network ;;
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

# Data disks: every EBS volume but the one holding /, by stable id (NVMe names are not stable across boots), in
# the kernel's order. / may be on no disk at all (the rig's containers boot from an overlay).
root_disk=$(lsblk -no PKNAME "$(findmnt -no SOURCE /)" 2>/dev/null || true)
data_disks=$(for link in /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_*; do
  # udev also links each partition (-partN) and, on newer systemd, the namespace (_N)
  [[ -e $link && ! $link =~ (-part[0-9]+|_[0-9]+)$ ]] || continue
  disk=$(readlink -f "$link")
  if [[ $disk != "/dev/$root_disk" ]]; then printf '%s %s\n' "$disk" "$link"; fi
done | sort -V | cut -d' ' -f2 | paste -sd' ')

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
VPC_DNS=$VPC_DNS
PROBE_NAME=$PROBE_NAME
OS_RELEASE=$OS_RELEASE
EOF
chmod 0644 "$FACTS"/*.env

# The network fix changes the provider interface's MAC; cloud-init must not rewrite networking on later boots.
echo 'network: {config: disabled}' > /etc/cloud/cloud.cfg.d/99-custom-networking.cfg
rm -f /etc/netplan/50-cloud-init.yaml /etc/network/interfaces.d/50-cloud-init
systemctl enable systemd-networkd
# The network fix adds routes and rules of its own (table 200, iif pub0): a networkd restart must leave them.
mkdir -p /etc/systemd/networkd.conf.d
printf '[Network]\nManageForeignRoutes=no\nManageForeignRoutingPolicyRules=no\n' > /etc/systemd/networkd.conf.d/10-osa.conf

if [[ $ROLE == controller && $NAT_FOR_SUBNET_A == true ]]; then
  # management_egress=none: the controller is subnet A's way out, through its public ENI.
  mkdir -p /etc/systemd/network/05-osa-pub0.network.d
  printf '[Route]\nGateway=%s\nMetric=50\n' "$(awk -F= '$1=="PUBLIC_GW"{print $2}' "$FACTS/node.env")" \
    > /etc/systemd/network/05-osa-pub0.network.d/10-default-route.conf
  echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/60-osa-nat.conf
  # No package can be installed yet (nothing has egress before this NAT exists): nft is in the AMI, and a table
  # of its own leaves iptables' nat table to the network fix (its floating IPs' exemption). Applied from the
  # reboot on, when pub0 exists.
  cat > "$FACTS/subnet-a-nat.nft" <<NFT
table ip osa_subnet_a_nat
delete table ip osa_subnet_a_nat
table ip osa_subnet_a_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat + 10; policy accept;
    oifname "pub0" ip saddr $(awk -F= '$1=="MGMT_CIDR"{print $2}' "$FACTS/node.env") masquerade
  }
}
NFT
  cat > /etc/systemd/system/openstack-aws-subnet-a-nat.service <<UNIT
[Unit]
Description=openstack-aws: subnet A's NAT through pub0 (management_egress=none)
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f $FACTS/subnet-a-nat.nft

[Install]
WantedBy=multi-user.target
UNIT
  systemctl enable openstack-aws-subnet-a-nat.service
fi

# Debian's AMIs have no SSM agent: install it from the region's official bucket, retrying while egress comes up.
# SSM_AGENT_URL is set only by the QEMU boot proof (its stand-in package); EC2 uses the region's bucket.
agent_url=${SSM_AGENT_URL:-"https://s3.$REGION.amazonaws.com/amazon-ssm-$REGION/latest/debian_amd64/amazon-ssm-agent.deb"}
# (S3 is reachable without NAT, through the VPC's gateway endpoint.)
retry 20 30 "SSM agent download from $agent_url" curl -sfo /tmp/amazon-ssm-agent.deb "$agent_url" \
  || { echo "no SSM agent: this node can never come Online; check the subnet's route to S3"; exit 1; }
# The package starts the agent at once, and "Online" would let the install send steps into the prefetch and
# the reboot. It may start only once this script has finished: from the reboot on.
mkdir -p /etc/systemd/system/amazon-ssm-agent.service.d
printf '[Unit]\nConditionPathExists=%s\n' "$FACTS/userdata.done" \
  > /etc/systemd/system/amazon-ssm-agent.service.d/10-osa-after-userdata.conf
systemctl daemon-reload
# apt, not dpkg -i: it waits for the dpkg lock.
retry 3 30 "SSM agent install" apt_get install -y /tmp/amazon-ssm-agent.deb
systemctl enable amazon-ssm-agent

# Prefetch only (download, no install): the install steps then do not wait on the network.
update_tries=5
if [[ $NAT_FOR_SUBNET_A == true && $ROLE == controller ]]; then
  update_tries=1
  echo "management_egress=none: this node is subnet A's NAT, with egress only from its reboot on"
elif [[ $NAT_FOR_SUBNET_A == true ]]; then
  update_tries=40
  echo "management_egress=none: apt waits up to 20 min for egress through the controller's NAT (up once it rebooted)"
fi
retry "$update_tries" 30 "apt-get update (egress)" apt_get update || echo "no egress for apt yet"
read -ra packages <<< "$PACKAGES"
retry 3 30 "prefetch" apt_get install -y --download-only "${packages[@]}" \
  || echo "prefetch incomplete; the install steps will download the rest"
touch "$FACTS/userdata.done"
echo "userdata done for $NODE_NAME ($ROLE); rebooting to apply pinned interface names"

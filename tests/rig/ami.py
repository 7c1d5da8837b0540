"""What makes the rig's base image boot like Debian's AMI: cloud-init with the Ec2 datasource, DHCP on the NICs
before userdata, and a stand-in for what the kernel and udev do on EC2 (NIC names by slot or by a .link file's
MAC, /dev/disk/by-id links of EBS volumes), which a container cannot do itself."""

from __future__ import annotations

import shlex
from pathlib import Path

from . import instances
from .config import NodeSpec
from .sh import run

#: Read by the hardware stand-in at each boot; written by the rig at each launch.
HW_FILE = "etc/rig-hw"
EBS_LINK = "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"

CLOUD_CFG = """\
# rig: the AMI's cloud-init, for a container: the Ec2 datasource as RigEc2 (below), named alone so that ds-identify
# takes it without looking at DMI; IMDSv2 is the rig's (tests/imds in the VPC router's namespace).
datasource_list: [ RigEc2, None ]
datasource:
  Ec2:
    strict_id: warn
    metadata_urls: [ "http://169.254.169.254" ]
    max_wait: 120
    timeout: 10
# On EC2 the local stage configures the primary ENI from IMDS, which needs DMI to know it is on EC2: here the
# image's networkd DHCP (90-rig-ami.network) does that job.
network: {config: disabled}
# The AMI has its locale generated; the minimal image has none to set (cc_locale would fail the boot's config stage).
locale: false
"""

#: cloud-init asks DMI (or /sys/hypervisor/uuid) whether it is on AWS, and a container has neither of its own: the
#: Ec2 datasource then skips IMDSv2's token and reads metadata as IMDSv1, which EC2 refuses (HttpTokens=required).
#: This is EC2's own datasource with that answer given; cloud-init finds it by name on its default module path.
EC2_DATASOURCE = """\
\"\"\"rig: cloud-init's Ec2 datasource in a container, which has no DMI to identify AWS by (tests/rig/ami.py).\"\"\"
from cloudinit import sources
from cloudinit.sources import DataSourceEc2 as ec2


class DataSourceRigEc2(ec2.DataSourceEc2):
    def _get_cloud_name(self):
        return ec2.CloudNames.AWS


# Network stage only: on EC2 the local stage brings up the primary ENI, here the image's networkd DHCP does.
datasources = [(DataSourceRigEc2, (sources.DEP_FILESYSTEM, sources.DEP_NETWORK))]


def get_datasource_list(depends):
    return sources.list_from_depends(depends, datasources)
"""

AMI_NETWORK = """\
# rig: the AMI's network before userdata: every NIC asks the VPC's DHCP, whose lease for the primary ENI alone
# carries a router (tests/rig/vpc.py). Userdata's own files (05-osa-*) take over once names are pinned.
[Match]
Name=ens*

[Network]
DHCP=ipv4
"""

HW_SCRIPT = f"""\
#!/bin/sh
# rig: what the kernel and udev do on EC2 before networking starts. The launcher moves each ENI's veth in under a
# temporary name: it becomes ensN (the PCI slot's name, in no promised order) unless a .link file in
# /etc/systemd/network pins its MAC to a name (udev's rename; userdata writes them). EBS data volumes get their
# by-id links. /{HW_FILE} (written at launch) says which.
set -eu
. /{HW_FILE}
pinned() {{
    for link in /etc/systemd/network/*.link; do
        [ -e "$link" ] || continue
        if grep -qix "PermanentMACAddress=$1" "$link"; then sed -n 's/^Name=//p' "$link"; return; fi
    done
}}
for nic in $NICS; do
    tmp=${{nic%%=*}} slot=${{nic#*=}}
    i=0
    while [ ! -e "/sys/class/net/$tmp" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    name=$(pinned "$(cat "/sys/class/net/$tmp/address")")
    ip link set "$tmp" name "${{name:-$slot}}"
done
mkdir -p {EBS_LINK.rsplit('/', 1)[0]}
for disk in $DISKS; do ln -sfn "${{disk%%=*}}" "{EBS_LINK}${{disk#*=}}"; done
"""

HW_UNIT = """\
[Unit]
Description=rig: NIC names and EBS links as the kernel and udev give them on EC2
DefaultDependencies=no
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/rig-ifnames

[Install]
WantedBy=sysinit.target
"""


def configure_base(root: Path) -> None:
    """cloud-init and its datasource, the AMI's DHCP, networkd on, the hardware stand-in, an unnamed host."""
    # apt, not debootstrap: debootstrap cannot resolve the virtual packages cloud-init's dependencies need
    # (python3-cryptography on python3-cffi-backend-api-*). Packages come through the cache the image uses.
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        run(["chroot", str(root), "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
             "apt-get install -y -qq --no-install-recommends cloud-init"], timeout=1200)
    finally:
        run(["umount", str(root / "proc")])
    (root / "etc/cloud/cloud.cfg.d/90-rig.cfg").write_text(CLOUD_CFG)
    (root / "usr/lib/python3/dist-packages/DataSourceRigEc2.py").write_text(EC2_DATASOURCE)
    (root / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    (root / "etc/systemd/network/90-rig-ami.network").write_text(AMI_NETWORK)
    script = root / "usr/local/sbin/rig-ifnames"
    script.write_text(HW_SCRIPT)
    script.chmod(0o755)
    (root / "etc/systemd/system/rig-ifnames.service").write_text(HW_UNIT)
    run(["chroot", str(root), "systemctl", "enable", "rig-ifnames.service", "systemd-networkd.service",
         "systemd-networkd-wait-online.service"])
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")


def hw_file(spec: NodeSpec, disks: list[str]) -> str:
    """This node's NICs (launcher's veth name = kernel name) and data disks (device = EBS serial)."""
    names = instances.nic_names(spec)
    nics = " ".join(f"{spec.cont_if(e.index)}={names[e.index]}" for e in spec.enis)
    vols = " ".join(f"{dev}={instances.disk_serial(spec, i)}" for i, dev in enumerate(disks))
    return (f"# rig: {spec.name}'s hardware as EC2 attaches it (written at each launch)\n"
            f"NICS={shlex.quote(nics)}\nDISKS={shlex.quote(vols)}\n")

"""One OpenStack node: its ENIs in device-index order, a launch template (IMDSv2, optional nested
virtualization), encrypted volumes, and an instance that reboots once after userdata."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Fn, Tags
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from stacks.config import RoleConfig

#: Debian's AMIs boot from /dev/xvda; data disks follow as sdf, sdg, ... (NVMe on Nitro, found by serial).
ROOT_DEVICE = "/dev/xvda"
DATA_DEVICES = ("/dev/sdf", "/dev/sdg", "/dev/sdh")
#: Cloud-init part that reboots once after the script, so pinned interface names and networkd config apply.
_REBOOT_CLOUD_CONFIG = (
    "#cloud-config\npower_state:\n  mode: reboot\n  message: openstack-aws first boot done\n  condition: true\n"
)


@dataclass(frozen=True)
class EniSpec:
    """One ENI: device index 0 is management (subnet A), 1 provider and 2 public (subnet B)."""

    device_index: int
    purpose: str
    subnet_id: str
    private_ip: str
    source_dest_check: bool = True
    secondary_ips: tuple[str, ...] = ()  # the floating IP pool on the controller's provider ENI
    #: The pool's ENI always lists its addresses, even with an empty pool: switching between PrivateIpAddress and
    #: PrivateIpAddresses when floating_ips reaches or leaves 0 would replace the ENI and with it the controller.
    holds_pool: bool = False
    #: Never empty: an ENI without a group would get the VPC's default group.
    security_group_ids: tuple[str, ...] = ()


class NodeInstance(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        node: str,
        role: RoleConfig,
        enis: list[EniSpec],
        instance_profile_name: str,
        image_id: str,
        user_data: str,
        prefix: str,
        key_pair: str | None,
        nested_virtualization: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.node_name = node
        self.enis: dict[int, ec2.CfnNetworkInterface] = {}
        for spec in sorted(enis, key=lambda e: e.device_index):
            if not spec.security_group_ids:
                raise ValueError(f"{node} eth{spec.device_index}: an ENI needs a security group of its own kind")
            addresses = [
                ec2.CfnNetworkInterface.PrivateIpAddressSpecificationProperty(private_ip_address=ip, primary=False)
                for ip in spec.secondary_ips
            ]
            # With secondary addresses, the list names the primary (PrivateIpAddress would be a second source of it).
            listed = bool(addresses) or spec.holds_pool
            eni = ec2.CfnNetworkInterface(
                self,
                f"Eni{spec.device_index}",
                subnet_id=spec.subnet_id,
                private_ip_address=None if listed else spec.private_ip,
                private_ip_addresses=[
                    ec2.CfnNetworkInterface.PrivateIpAddressSpecificationProperty(
                        private_ip_address=spec.private_ip, primary=True
                    ),
                    *addresses,
                ]
                if listed
                else None,
                group_set=list(spec.security_group_ids),
                source_dest_check=spec.source_dest_check,
                description=f"{prefix} {node} eth{spec.device_index} ({spec.purpose})",
            )
            Tags.of(eni).add("openstack-aws:eni", f"eth{spec.device_index}")
            Tags.of(eni).add("openstack-aws:eni-purpose", spec.purpose)
            self.enis[spec.device_index] = eni

        template = ec2.CfnLaunchTemplate(
            self,
            "LaunchTemplate",
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_tokens="required", http_endpoint="enabled", http_put_response_hop_limit=1
                ),
                cpu_options=ec2.CfnLaunchTemplate.CpuOptionsProperty(nested_virtualization="enabled")
                if nested_virtualization
                else None,
            ),
        )
        volumes = [self._volume(ROOT_DEVICE, role.root_gib)]
        volumes += [self._volume(DATA_DEVICES[i], role.data_gib) for i in range(role.data_disks)]
        self.instance = ec2.CfnInstance(
            self,
            "Instance",
            image_id=image_id,
            instance_type=role.instance_type,
            iam_instance_profile=instance_profile_name,
            launch_template=ec2.CfnInstance.LaunchTemplateSpecificationProperty(
                launch_template_id=template.ref, version=template.attr_latest_version_number
            ),
            network_interfaces=[
                ec2.CfnInstance.NetworkInterfaceProperty(device_index=str(index), network_interface_id=eni.ref)
                for index, eni in self.enis.items()
            ],
            block_device_mappings=volumes,
            key_name=key_pair,
            user_data=Fn.base64(_multipart(user_data)),
            monitoring=True,
        )
        Tags.of(self.instance).add("Name", f"{prefix}-{node}")

    @staticmethod
    def _volume(device: str, size_gib: int) -> ec2.CfnInstance.BlockDeviceMappingProperty:
        return ec2.CfnInstance.BlockDeviceMappingProperty(
            device_name=device,
            ebs=ec2.CfnInstance.EbsProperty(
                volume_size=size_gib, volume_type="gp3", encrypted=True, delete_on_termination=True
            ),
        )


def _multipart(script: str) -> str:
    """MIME multipart: the reboot cloud-config, then the script (cloud-init runs both on first boot)."""
    boundary = "==OPENSTACK-AWS=="
    parts = [("text/cloud-config", _REBOOT_CLOUD_CONFIG), ("text/x-shellscript", script)]
    body = "".join(
        f'--{boundary}\nContent-Type: {kind}; charset="utf-8"\nMIME-Version: 1.0\n\n{text}\n' for kind, text in parts
    )
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\nMIME-Version: 1.0\n\n{body}--{boundary}--\n'

"""ENI limits of the x86_64 instance types the nodes can use (Debian's AMI here is amd64).

From the EC2 User Guide's "Maximum IP addresses per network interface" table. Burstable t2/t3/t3a have their own
small-size limits; the fixed-performance families share one limit per size.
"""

from __future__ import annotations

_BURSTABLE = {"nano": 2, "micro": 2, "small": 3, "medium": 3, "large": 3, "xlarge": 4, "2xlarge": 4}
_FIXED = {
    "large": 3,
    "xlarge": 4,
    "2xlarge": 4,
    "4xlarge": 8,
    "8xlarge": 8,
    "12xlarge": 8,
    "16xlarge": 15,
    "24xlarge": 15,
    "32xlarge": 15,
    "48xlarge": 15,
    "metal": 15,
}
#: IPv4 addresses per ENI (primary + secondaries), same source.
_BURSTABLE_IPV4 = {"nano": 2, "micro": 2, "small": 4, "medium": 6, "large": 12, "xlarge": 15, "2xlarge": 15}
_FIXED_IPV4 = {"large": 10, "xlarge": 15, "2xlarge": 15, "4xlarge": 30, "8xlarge": 30, "12xlarge": 30}
_FIXED_IPV4_LARGEST = 50  # 16xlarge and up, metal
_BURSTABLE_FAMILIES = {"t2", "t3", "t3a"}
_FIXED_FAMILIES = {
    "m5",
    "m5a",
    "m5n",
    "m6i",
    "m6a",
    "m7i",
    "m7a",
    "m8i",
    "c5",
    "c5a",
    "c5n",
    "c6i",
    "c6a",
    "c7i",
    "c7a",
    "c8i",
    "r5",
    "r5a",
    "r5n",
    "r6i",
    "r6a",
    "r7i",
    "r7a",
    "r8i",
}
#: EC2 offers nested virtualization (CpuOptions NestedVirtualization) only on these families.
NESTED_VIRTUALIZATION_FAMILIES = {"c8i", "m8i", "r8i"}


def _split(instance_type: str) -> tuple[str, str]:
    family, _, size = instance_type.partition(".")
    return family, size


def eni_limit(instance_type: str) -> int | None:
    """How many ENIs the type takes, or None when the type is not one we know (or not x86_64)."""
    family, size = _split(instance_type)
    if family in _BURSTABLE_FAMILIES:
        return _BURSTABLE.get(size)
    if family in _FIXED_FAMILIES:
        return _FIXED.get(size)
    return None


def ipv4_per_eni(instance_type: str) -> int | None:
    """How many IPv4 addresses one ENI of the type takes, or None when the type is not one we know."""
    family, size = _split(instance_type)
    if family in _BURSTABLE_FAMILIES:
        return _BURSTABLE_IPV4.get(size)
    if family in _FIXED_FAMILIES and size in _FIXED:
        return _FIXED_IPV4.get(size, _FIXED_IPV4_LARGEST)
    return None


def supports_nested_virtualization(instance_type: str) -> bool:
    return _split(instance_type)[0] in NESTED_VIRTUALIZATION_FAMILIES

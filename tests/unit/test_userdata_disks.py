"""Userdata's data-disk discovery (userdata/node.sh, "Data disks"): every EBS volume's by-id link except the
root's, in kernel-name order, no partition or namespace links; and a root on no disk at all (the rig's overlay)
must not stop the script, which runs under `set -e`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import ROOT

PREFIX = "nvme-Amazon_Elastic_Block_Store_"


def discovery_block(script: str) -> str:
    start = script.index("# Data disks:")
    return script[start : script.index("printf '%s\\nDATA_DISKS=", start)]


def discover(tmp_path: Path, links: dict[str, str], root_source: str, root_parent: str | None) -> str:
    """Run the block with /dev/disk/by-id/ moved to a folder of `links` (name -> file in tmp_path) and findmnt/lsblk
    faked: `/` is on `root_source`, whose parent disk lsblk names (None: lsblk fails, as for an overlay)."""
    byid = tmp_path / "by-id"
    byid.mkdir()
    for name, target in links.items():
        (tmp_path / target).touch()
        (byid / name).symlink_to(tmp_path / target)
    lsblk = f"echo {tmp_path.name}/{root_parent}" if root_parent else "return 1"
    fakes = f"findmnt() {{ echo {root_source}; }}\nlsblk() {{ {lsblk}; }}\n"
    block = discovery_block((ROOT / "userdata" / "node.sh").read_text()).replace("/dev/disk/by-id/", f"{byid}/")
    # the block compares with /dev/<parent>: point /dev/<tmp name> at the fake disks
    block = block.replace('"/dev/$root_disk"', f'"{tmp_path.parent}/$root_disk"')
    proc = subprocess.run(["bash", "-c", f"set -euo pipefail\n{fakes}{block}\necho \"$data_disks\""],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_ebs_volumes_but_the_root_in_kernel_order_without_partitions(tmp_path: Path) -> None:
    links = {
        f"{PREFIX}volroot": "nvme0n1", f"{PREFIX}volroot-part1": "nvme0n1p1",
        f"{PREFIX}vol0bbb": "nvme1n1", f"{PREFIX}vol0aaa": "nvme2n1", f"{PREFIX}vol0aaa_1": "nvme2n1",
        f"{PREFIX}vol0ccc": "nvme10n1",
    }
    found = discover(tmp_path, links, "/dev/nvme0n1p1", "nvme0n1")
    byid = tmp_path / "by-id"
    assert found == f"{byid}/{PREFIX}vol0bbb {byid}/{PREFIX}vol0aaa {byid}/{PREFIX}vol0ccc"


def test_a_root_on_no_disk_keeps_every_volume_and_does_not_stop_the_script(tmp_path: Path) -> None:
    found = discover(tmp_path, {f"{PREFIX}vol1": "loop1", f"{PREFIX}vol2": "loop2"}, "overlay", None)
    assert found == f"{tmp_path}/by-id/{PREFIX}vol1 {tmp_path}/by-id/{PREFIX}vol2"


def test_no_volume_at_all_is_an_empty_list(tmp_path: Path) -> None:
    assert discover(tmp_path, {}, "/dev/nvme0n1p1", "nvme0n1") == ""

"""Data disks are named by their stable paths (issue 13, item 5): DATA_DISKS holds /dev/disk/by-id/... on EC2, and
NVMe kernel names (nvme1n1, nvme2n1) follow probe order, which changes between boots. A step that resolves the
path to its kernel name today and writes that into a lasting configuration (the LVM filter) loses the disk after
a renumbering: the volume group disappears."""

from __future__ import annotations

import re

from tests.conftest import ROOT

CINDER_VOLUME = ROOT / "steps" / "81-cinder-volume.sh"


def test_the_lvm_filter_names_the_stable_path_from_data_disks() -> None:
    text = CINDER_VOLUME.read_text()
    assert re.search(r'^disk=\$\{disks\[0\]\}$', text, re.M), "the disk is DATA_DISKS' own path"
    assert "readlink" not in text, "no kernel name (readlink -f) may reach the LVM filter or the volume group"
    assert 'filter = [ \\"a|^$disk\\$|\\", \\"r|.*|\\" ]' in text

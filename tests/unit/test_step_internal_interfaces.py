"""steps/lib/openstack.sh's service settings (issue 11): every service reaches its peers through the internal
endpoints, never the public ones on the Elastic IP (which no node reaches); the browser-facing console URL is the
one public address. ini_merge/ini_set are stand-ins that print what would be written."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT

LIB = ROOT / "steps" / "lib"
STUBS = r"""
ini_merge() { local section=; while IFS= read -r line; do
    if [[ $line == \[*\] ]]; then section=$line; else printf '%s %s %s\n' "${1##*/}" "$section" "$line"; fi; done; }
ini_set() { printf '%s [%s] %s = %s\n' "${1##*/}" "$2" "$3" "$4"; }
secret() { printf 'secret-%s' "$1"; }
"""


def _settings(call: str) -> set[str]:
    script = (
        f'set -euo pipefail\n. "{LIB}/common.sh"\n. "{LIB}/openstack.sh"\n{STUBS}\n'
        "CONTROLLER_IP=172.31.32.11 ELASTIC_IP=203.0.113.10 MGMT_IP=172.31.32.21 RABBIT_PASS=r NOVA_PASS=n "
        "PLACEMENT_PASS=p NEUTRON_PASS=q CINDER_PASS=c CINDER_DBPASS=d\n" + call
    )
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.splitlines())


def test_nova_finds_placement_neutron_glance_and_cinder_internally_and_offers_the_console_publicly() -> None:
    lines = _settings("nova_conf_common")
    for section in ("placement", "neutron", "keystone_authtoken"):
        assert f"nova.conf [{section}] auth_url = http://172.31.32.11:5000/v3" in lines
    assert "nova.conf [placement] valid_interfaces = internal" in lines
    assert "nova.conf [neutron] valid_interfaces = internal" in lines
    assert "nova.conf [cinder] catalog_info = volumev3::internalURL" in lines
    assert "nova.conf [glance] api_servers = http://172.31.32.11:9292" in lines
    assert "nova.conf [keystone_authtoken] interface = internal" in lines
    assert "nova.conf [vnc] novncproxy_base_url = https://203.0.113.10:6080/vnc_auto.html" in lines
    assert not [line for line in lines if "203.0.113.10" in line and "novncproxy" not in line
                and "www_authenticate_uri" not in line]


def test_cinder_calls_nova_and_glance_internally() -> None:
    lines = _settings("cinder_conf_common")
    assert "cinder.conf [nova] interface = internal" in lines
    assert "cinder.conf [DEFAULT] glance_api_servers = http://172.31.32.11:9292" in lines
    assert "cinder.conf [keystone_authtoken] interface = internal" in lines

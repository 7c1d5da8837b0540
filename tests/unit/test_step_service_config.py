"""steps/lib's service configuration with the real crudini (from .venv, as `make setup` installs it): service
tokens with the service role (issue 13, item 4) and service configurations closed to others (item 2)."""

from __future__ import annotations

import configparser
import json
import os
import stat
import subprocess
from pathlib import Path

from tests.conftest import ROOT

LIB = ROOT / "steps" / "lib" / "common.sh"
VENV_BIN = ROOT / ".venv" / "bin"


def _bash(script: str, tmp: Path, secrets: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The script after the library, with a secret file holding `secrets` (default: the memcache key only)."""
    source = tmp / "secrets.json"
    source.write_text(json.dumps({"MEMCACHE_SECRET_KEY": "mk"} if secrets is None else secrets))
    prologue = (f'set -euo pipefail\n. "{LIB}"\nOSA_RUN="{tmp}"; OSA_STEP=test; OSA_T0=$SECONDS\n'
                "CONTROLLER_IP=172.31.32.11 ELASTIC_IP=203.0.113.10 MGMT_IP=172.31.32.11\n"
                f"SECRET_SOURCE=file:{source}\n")
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", prologue + script], capture_output=True, text=True, env=env)


def _ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


def test_a_service_requires_the_service_role_in_service_tokens_and_sends_its_own(tmp_path: Path) -> None:
    conf = tmp_path / "cinder.conf"
    proc = _bash(f'ini_authtoken "{conf}" cinder secret1\nini_service_user "{conf}" cinder secret1', tmp_path)
    assert proc.returncode == 0, proc.stderr
    ini = _ini(conf)
    assert ini["keystone_authtoken"]["service_token_roles_required"] == "true"
    assert ini["keystone_authtoken"]["service_token_roles"] == "service"
    assert ini["service_user"]["send_service_user_token"] == "true"
    assert ini["service_user"]["username"] == "cinder" and ini["service_user"]["project_name"] == "service"


def test_os_register_gives_the_service_user_the_service_role(tmp_path: Path) -> None:
    fakes = (f'openstack() {{ echo "$*" >>"{tmp_path}/calls"; case "$*" in *" show "*|*" list "*) ;; esac; }}\n'
             "os_id() { echo id; }\nos_password_ok() { :; }\nos_ensure_service() { :; }\nos_ensure_endpoint() { :; }\n")
    proc = _bash(fakes + "os_register cinder volumev3 'Block Storage' CINDER_PASS :8776/v3", tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert any(c.startswith("role add") and c.endswith(" service") and "--user cinder" in c for c in calls), calls


def test_a_service_configuration_is_closed_to_others_and_the_change_is_journaled(tmp_path: Path) -> None:
    conf, plain = tmp_path / "proxy-server.conf", tmp_path / "plain.ini"
    for f in (conf, plain):
        f.write_text("[DEFAULT]\nbind_port = 8080\n")
        f.chmod(0o644)
    owner = f"{os.getuid()}:{os.getgid()}"
    proc = _bash(f'ini_merge "{conf}" {owner} <<<"[x]"\nini_merge "{plain}" <<<"[x]"\n_osa_changes', tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(conf.stat().st_mode) == 0o640
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644, "without an owner the file is not a service's: untouched"
    assert f"{conf}:mode" in proc.stdout.splitlines()[-1]


def test_cinder_calls_nova_internally_as_the_nova_service_user_and_sends_service_tokens(tmp_path: Path) -> None:
    """cinder_conf_common writes /etc/cinder/cinder.conf: the test runs the library with that path moved here."""
    conf = tmp_path / "cinder.conf"
    cinder = tmp_path / "cinder.sh"
    cinder.write_text((LIB.parent / "optional" / "cinder.sh").read_text().replace("/etc/cinder/cinder.conf", str(conf)))
    script = ("chown() { :; }\nRABBIT_PASS=r CINDER_DBPASS=d CINDER_PASS=c NOVA_PASS=n\n"
              f'. "{cinder}"\ncinder_conf_common')
    proc = _bash(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    ini = _ini(conf)
    assert ini["nova"]["interface"] == "internal"
    assert (ini["nova"]["auth_type"], ini["nova"]["username"], ini["nova"]["password"]) == ("password", "nova", "n")
    assert ini["service_user"]["send_service_user_token"] == "true"
    assert ini["keystone_authtoken"]["service_token_roles_required"] == "true"


def test_sysctl_on_writes_the_boot_file_and_sets_what_is_off_now(tmp_path: Path) -> None:
    fake = (f'sysctl() {{ if [[ $1 == -n ]]; then echo 0; else echo "sysctl $*" >>"{tmp_path}/calls"; fi; }}\n')
    proc = _bash(fake + f'sysctl_on "{tmp_path}/60-bind.conf" net.ipv4.ip_nonlocal_bind net.ipv6.ip_nonlocal_bind',
                 tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "60-bind.conf").read_text() == "net.ipv4.ip_nonlocal_bind = 1\nnet.ipv6.ip_nonlocal_bind = 1\n"
    assert (tmp_path / "calls").read_text().splitlines() == [
        "sysctl -q -w net.ipv4.ip_nonlocal_bind=1", "sysctl -q -w net.ipv6.ip_nonlocal_bind=1"]

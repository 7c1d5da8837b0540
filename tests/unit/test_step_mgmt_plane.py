"""Tenants' traffic does not reach the management plane (issue 13, item 1): what only the nodes use binds the
management address, rsync serves the management subnet only, instances' VNC servers are not on every address,
etcd (used by nothing) is gone, and the services' token caches in memcached are encrypted with a key from the
secret, derived where a secret older than that key lacks it.

The steps' own text is what is checked: the heredocs they write, rendered by bash with the facts; the lines they
run, run here with the real library and stand-ins for the system commands."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.unit.test_prefetch_lists import installed_on

STEPS = ROOT / "steps"
LIB = STEPS / "lib"
VENV_BIN = ROOT / ".venv" / "bin"
FACTS = {"MGMT_IP": "172.31.32.41", "MGMT_CIDR": "172.31.32.0/24", "CONTROLLER_IP": "172.31.32.11",
         "ELASTIC_IP": "203.0.113.10"}  # fmt: skip


def _bash(script: str, tmp: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    prologue = (f'set -euo pipefail\n. "{LIB}/common.sh"\nOSA_RUN="{tmp}"; OSA_STEP=test; OSA_T0=$SECONDS\n'
                + "".join(f"{k}={v}\n" for k, v in FACTS.items()))
    full_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **(env or {})}
    return subprocess.run(["bash", "-c", prologue + script], capture_output=True, text=True, env=full_env)


def _heredoc(step: str, opener: str) -> str:
    """The body of the heredoc the step feeds to the command line starting with `opener`, rendered by bash."""
    text = (STEPS / step).read_text()
    match = re.search(rf"^{re.escape(opener)}[^\n]*<<EOF2\n(.*?)^EOF2$", text, re.M | re.S)
    assert match, f"{step}: no heredoc after {opener!r}"
    facts = "".join(f"{k}={v}\n" for k, v in FACTS.items())
    proc = subprocess.run(["bash", "-c", f"{facts}cat <<EOF2\n{match.group(1)}EOF2"], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return proc.stdout


def _settings(text: str, separator: str = "=") -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        if separator in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition(separator)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def _block(step: str, first: str, last: str) -> str:
    """The step's lines from the one starting with `first` to the next one equal to `last`."""
    lines = (STEPS / step).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i] == last)
    return "\n".join(lines[start : end + 1]) + "\n"


# ------------------------------------------------------------------------------------------------- what binds where
def test_rsync_serves_only_the_management_subnet_on_the_management_address() -> None:
    conf = _heredoc("90-swift-storage.sh", "write_file /etc/rsyncd.conf")
    global_part, _, modules = conf.partition("\n[")
    settings = _settings(global_part)
    assert settings["address"] == [FACTS["MGMT_IP"]]
    assert settings["hosts allow"] == [FACTS["MGMT_CIDR"]]
    assert "hosts allow" not in modules and "address" not in modules, "no module widens the global limits"


def test_rabbitmq_its_distribution_port_and_epmd_bind_the_management_address() -> None:
    rabbit = _settings(_heredoc("20-controller-infra.sh", "write_file /etc/rabbitmq/rabbitmq.conf"))
    assert rabbit == {"listeners.tcp.default": [f"{FACTS['MGMT_IP']}:5672"],
                      "distribution.listener.interface": [FACTS["MGMT_IP"]]}  # fmt: skip
    epmd = _settings(_heredoc("20-controller-infra.sh", 'write_file "$epmd_dropin"'))
    # An empty ListenStream= drops the package's (every address); epmd keeps loopback, where the node registers.
    assert epmd["ListenStream"] == ["", "127.0.0.1:4369", f"{FACTS['MGMT_IP']}:4369"]
    assert "epmd_dropin=/etc/systemd/system/epmd.socket.d/" in (STEPS / "20-controller-infra.sh").read_text()


def test_mariadb_and_memcached_bind_the_management_address(tmp_path: Path) -> None:
    mariadb = _settings(_heredoc("20-controller-infra.sh", "write_file /etc/mysql/mariadb.conf.d/99-openstack.cnf"))
    assert mariadb["bind-address"] == [FACTS["MGMT_IP"]]
    conf = tmp_path / "memcached.conf"
    conf.write_text("# Debian's default\n-d\n-m 64\n-p 11211\n-u memcache\n-l 127.0.0.1\n-P /var/run/m.pid\n")
    step = (STEPS / "20-controller-infra.sh").read_text().splitlines()
    lines = [line.replace("/etc/memcached.conf", str(conf)) for line in step if line.startswith("set_line /etc/memc")]
    assert lines
    proc = _bash("\n".join(lines), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in conf.read_text().splitlines() if line.startswith("-l")] == [f"-l {FACTS['MGMT_IP']}"]


def _bound_only_to(tmp_path: Path, ss_lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The library's socket check (steps 20 and 93) with `ss` answering ss_lines (`ss -Hltn` columns)."""
    (tmp_path / "ss.out").write_text("".join(f"{line}\n" for line in ss_lines))
    return _bash(f'ss() {{ cat "{tmp_path}/ss.out"; }}\nbound_only_to {" ".join(args)}', tmp_path)


def test_the_socket_check_names_every_listener_off_the_allowed_addresses(tmp_path: Path) -> None:
    allowed = ["LISTEN 0 4096 127.0.0.1:4369 0.0.0.0:*", "LISTEN 0 4096 172.31.32.11:4369 0.0.0.0:*"]
    assert _bound_only_to(tmp_path, allowed, "4369", "127.0.0.1", "172.31.32.11").stdout == ""
    assert _bound_only_to(tmp_path, [], "4369", "172.31.32.11").returncode == 0, "nothing listening: nothing wrong"
    everywhere = ["LISTEN 0 4096 *:4369 *:*", "LISTEN 0 128 0.0.0.0:4369 0.0.0.0:*", "LISTEN 0 128 [::]:4369 [::]:*"]
    proc = _bound_only_to(tmp_path, allowed + everywhere, "4369", "127.0.0.1", "172.31.32.11")
    assert proc.returncode == 1 and proc.stdout.split() == ["*:4369", "0.0.0.0:4369", "[::]:4369"]
    proc = _bound_only_to(tmp_path, ["LISTEN 0 4096 127.0.0.1:5672 0.0.0.0:*"], "5672", "172.31.32.11")
    assert proc.returncode == 1 and proc.stdout.split() == ["127.0.0.1:5672"]


def test_the_controller_step_checks_every_port_it_promises(tmp_path: Path) -> None:
    text = (STEPS / "20-controller-infra.sh").read_text()
    loop = re.search(r'^for check in (.*); do$', text, re.M)
    assert loop, "the final socket check is missing"
    checks = {c.split()[0]: c.split()[1:] for c in re.findall(r'"([^"]+)"', loop.group(1))}
    assert checks == {"3306": ["$MGMT_IP"], "5672": ["$MGMT_IP"], "25672": ["$MGMT_IP"], "11211": ["$MGMT_IP"],
                      "4369": ["127.0.0.1", "$MGMT_IP"]}  # fmt: skip


def test_no_step_sets_a_listener_on_every_address() -> None:
    """0.0.0.0 or [::] as a listen address nowhere: the instances' VNC servers (server_listen), etcd's peer port
    and noVNC's proxy were such defaults; clients outside reach the public side through the public-tls step's
    proxy on PUBLIC_IP (tests/unit/test_public_tls.py)."""
    found = [f"{path.name}: {line.strip()}" for path in [*STEPS.glob("*.sh"), *LIB.glob("**/*.sh")]
             for line in path.read_text().splitlines()
             if not line.lstrip().startswith("#") and re.search(r"0\.0\.0\.0(?!/)|\[::\]", line)]  # fmt: skip
    assert found == []


def test_instances_vnc_servers_listen_on_the_management_address() -> None:
    stubs = (r"""ini_merge() { local section=; while IFS= read -r line; do
    if [[ $line == \[*\] ]]; then section=$line; else printf '%s %s\n' "$section" "$line"; fi; done; }
ini_set() { :; }
secret() { printf 'x'; }
""")
    script = (f'set -euo pipefail\n. "{LIB}/common.sh"\n. "{LIB}/openstack.sh"\n{stubs}'
              "CONTROLLER_IP=172.31.32.11 ELASTIC_IP=203.0.113.10 MGMT_IP=172.31.32.21 RABBIT_PASS=r NOVA_PASS=n "
              "PLACEMENT_PASS=p NEUTRON_PASS=q\nnova_conf_common")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = set(proc.stdout.splitlines())
    assert {"[DEFAULT] my_ip = 172.31.32.21", "[vnc] server_listen = $my_ip",
            "[vnc] server_proxyclient_address = $my_ip"} <= lines  # fmt: skip
    overrides = [p.name for p in STEPS.glob("*.sh")
                 if any("server_listen" in line and not line.startswith("#") for line in p.read_text().splitlines())]
    assert overrides == [], "a step's own server_listen would replace nova_conf_common's"


# ------------------------------------------------------------------------------------------------------------- etcd
def _purge_etcd(tmp_path: Path, state: str | None) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Step 20's etcd block against a dpkg that knows etcd-server in `state` (None: never installed)."""
    status = tmp_path / "etcd.state"
    if state is None:
        status.unlink(missing_ok=True)
    else:
        status.write_text(state)
    fakes = (f'dpkg-query() {{ [[ -e "{status}" ]] && cat "{status}"; }}\ndpkg_recover() {{ :; }}\n'
             f'apt-get() {{ echo "$*" >>"{tmp_path}/apt.calls"; echo not-installed >"{status}"; }}\n'
             f'OSA_APT_LOG="{tmp_path}/apt.log"\n')
    proc = _bash(fakes + _block("20-controller-infra.sh", "etcd_state=", "fi") + "_osa_changes", tmp_path)
    calls = tmp_path / "apt.calls"
    made = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return proc, made


def test_etcd_is_not_installed_and_an_earlier_releases_is_purged_once(tmp_path: Path) -> None:
    assert "etcd-server" not in installed_on("controller")
    for state in ("installed", "unpacked", "config-files"):  # a killed run's half-install, a removed package
        proc, calls = _purge_etcd(tmp_path, state)
        assert proc.returncode == 0, proc.stderr
        assert len(calls) == 1 and calls[0].startswith("purge ") and calls[0].endswith(" etcd-server"), calls
        assert "purged:etcd-server" in proc.stdout.splitlines()[-1]
    for state in ("not-installed", None):  # the re-run after the purge; a node that never had it
        again, calls = _purge_etcd(tmp_path, state)
        assert again.returncode == 0 and calls == [] and again.stdout.splitlines()[-1] == "nothing changed"


# ------------------------------------------------------------------------------------------------ memcache keys
def _secret_file(tmp_path: Path, values: dict[str, str]) -> dict[str, str]:
    (tmp_path / "s.json").write_text(json.dumps(values))
    return {"SECRET_SOURCE": f"file:{tmp_path}/s.json"}


def _derived(base: str) -> str:
    return hmac.new(base.encode(), b"openstack-aws:MEMCACHE_SECRET_KEY", hashlib.sha256).hexdigest()


def test_every_token_cache_in_memcached_is_encrypted_with_the_secrets_key(tmp_path: Path) -> None:
    env = _secret_file(tmp_path, {"MEMCACHE_SECRET_KEY": "mk", "RABBIT_PASS": "r"})
    conf, proxy = tmp_path / "glance-api.conf", tmp_path / "proxy-server.conf"
    proc = _bash(f'ini_authtoken "{conf}" glance gp\nini_authtoken_cache "{proxy}" filter:authtoken', tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    want = {"memcached_servers": ["172.31.32.11:11211"], "memcache_security_strategy": ["ENCRYPT"],
            "memcache_secret_key": ["mk"]}  # fmt: skip
    for path, section in ((conf, "keystone_authtoken"), (proxy, "filter:authtoken")):
        text = path.read_text()
        assert f"[{section}]" in text
        assert {key: _settings(text).get(key) for key in want} == want


def test_memcached_servers_is_written_only_with_the_encryption() -> None:
    """Every keystonemiddleware that uses memcached gets its servers from ini_authtoken_cache, which writes the
    strategy and key with them: ini_authtoken (glance, placement, nova, neutron, cinder) and the Swift proxy."""
    writers = [f"{p.relative_to(STEPS)}:{n}" for p in [*STEPS.glob("*.sh"), *LIB.glob("**/*.sh")]
               for n, line in enumerate(p.read_text().splitlines(), 1)
               if line.startswith("memcached_servers")]  # fmt: skip
    assert len(writers) == 1 and writers[0].startswith("lib/optional/service.sh:"), writers
    assert 'ini_authtoken_cache "$conf" filter:authtoken' in (STEPS / "91-swift-proxy.sh").read_text()


def test_a_secret_older_than_the_memcache_key_gets_a_stable_derived_one(tmp_path: Path) -> None:
    """Secrets Manager keeps a deployment's secret across updates: until the seeder adds the key, the steps
    derive one from RABBIT_PASS, the same on every node and run, and never fail for its absence."""
    env = _secret_file(tmp_path, {"RABBIT_PASS": "rabbit1", "ADMIN_PASS": "a"})
    first = _bash("secret MEMCACHE_SECRET_KEY", tmp_path, env)
    second = _bash("secret MEMCACHE_SECRET_KEY", tmp_path, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout == _derived("rabbit1")
    conf = tmp_path / "nova.conf"
    proc = _bash(f'ini_authtoken "{conf}" nova np', tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert _settings(conf.read_text())["memcache_secret_key"] == [_derived("rabbit1")]
    again = _bash(f'ini_authtoken "{conf}" nova np\n_osa_changes', tmp_path, env)
    assert again.stdout.splitlines()[-1] == "nothing changed"
    # Once the secret has the key (the seeder on the next update), it is used.
    env = _secret_file(tmp_path, {"RABBIT_PASS": "rabbit1", "MEMCACHE_SECRET_KEY": "seeded"})
    assert _bash("secret MEMCACHE_SECRET_KEY", tmp_path, env).stdout == "seeded"


def test_without_the_key_it_derives_from_the_step_says_which_is_missing(tmp_path: Path) -> None:
    proc = _bash("secret MEMCACHE_SECRET_KEY", tmp_path, _secret_file(tmp_path, {"ADMIN_PASS": "a"}))
    assert proc.returncode != 0 and "secret RABBIT_PASS is missing" in proc.stderr

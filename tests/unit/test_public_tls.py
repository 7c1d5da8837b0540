"""TLS on the public side (issue 13, item 3): Horizon and every public endpoint are https on the Elastic IP, through
Apache on PUBLIC_IP (step public-tls), while every service listens on the management address only; the certificate
is made once, kept in the artifact store (a rebuild finds it again) and its key is never readable by others.

The library's functions run here with the real openssl and a folder as the artifact store (as in the rig); the
steps' own text is checked for what only a node can run (their heredocs rendered by bash with the facts)."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from stacks.network_stack import PUBLIC_PORTS
from stacks.step_catalog import load_steps
from tests.conftest import ROOT
from tests.rig import config as rig_config
from tests.rig.horizon_browser import spki_sha256
from tests.rig.secret_files import key_lines
from tests.unit.test_step_mgmt_plane import _heredoc, _settings

STEPS = ROOT / "steps"
LIB = STEPS / "lib"
PUBLIC_LIB = LIB / "optional" / "public.sh"
MGMT_IP = "172.31.32.41"  # test_step_mgmt_plane's FACTS, which _heredoc renders with
FACTS = {"MGMT_IP": "172.31.32.11", "CONTROLLER_IP": "172.31.32.11", "PUBLIC_IP": "172.31.33.11",
         "ELASTIC_IP": "203.0.113.10"}  # fmt: skip
EIP, PUBLIC_IP, CONTROLLER_IP = FACTS["ELASTIC_IP"], FACTS["PUBLIC_IP"], FACTS["CONTROLLER_IP"]


def _bash(script: str, tmp: Path, **facts: str) -> subprocess.CompletedProcess[str]:
    """The library as a checkout loads it (every optional part), a folder artifact store, TLS_DIR under tmp; `sleep`
    returns at once (tls_ensure's retries)."""
    values = {**FACTS, "ARTIFACT_STORE": f"dir:{tmp}/store", **facts}
    prologue = (f'set -euo pipefail\n. "{LIB}/common.sh"\nOSA_RUN="{tmp}/run"; OSA_STEP=test; OSA_T0=$SECONDS\n'
                f'mkdir -p "$OSA_RUN"; chmod 700 "$OSA_RUN"; TLS_DIR="{tmp}/etc"\nsleep() {{ :; }}\n'
                + "".join(f"{k}={v}\n" for k, v in values.items()))  # fmt: skip
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", prologue + script], capture_output=True, text=True, env=env)


def _ok(script: str, tmp: Path, **facts: str) -> str:
    proc = _bash(script, tmp, **facts)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _public_tls(tmp: Path) -> list[tuple[int, int, str]]:
    out = _ok('printf "%s\\n" "${PUBLIC_TLS[@]}"', tmp)
    return [(int(a), int(b), s) for a, b, s in (line.split() for line in out.splitlines())]


def _step(name: str) -> str:
    return next(p for p in STEPS.glob("*.sh") if p.stem.split("-", 1)[1] == name).read_text()


# ------------------------------------------------------------------------------------------- one list, every port
def test_the_proxy_list_is_every_public_endpoints_port_plus_horizon(tmp_path: Path) -> None:
    """Each port a public URL names (os_register's endpoints, Keystone's, noVNC's) is in PUBLIC_TLS, and nothing
    else but Horizon's 443; the security group opens exactly those and 80 (the redirect)."""
    texts = [p.read_text() for p in [*STEPS.glob("*.sh"), *LIB.glob("**/*.sh")]]
    registered = {int(m) for t in texts for m in re.findall(r"^os_register \S+ \S+ \"[^\"]*\" \S+ '?:(\d+)", t, re.M)}
    public_urls = {int(m) for t in texts for m in re.findall(r"public_url :(\d+)", t)}
    assert {9292, 8778, 8774, 9696, 8776, 8080} <= registered, registered
    ports = {port for port, _, _ in _public_tls(tmp_path)}
    assert ports == registered | public_urls | {443}
    assert set(PUBLIC_PORTS) == ports | {80}
    assert rig_config.public_tls() == _public_tls(tmp_path), "the rig reads the same list"


def _site(tmp: Path) -> dict[str, str]:
    """public_tls_site rendered: every VirtualHost's address -> its body; '' -> what is outside them."""
    text = _ok("public_tls_site", tmp)
    hosts = dict(re.findall(r"^<VirtualHost (\S+)>\n(.*?)^</VirtualHost>$", text, re.M | re.S))
    hosts[""] = re.sub(r"^<VirtualHost .*?^</VirtualHost>\n", "", text, flags=re.M | re.S)
    return hosts


def test_apache_listens_on_the_public_address_only_and_forwards_to_the_management_address(tmp_path: Path) -> None:
    entries = _public_tls(tmp_path)
    site = _site(tmp_path)
    assert re.findall(r"^Listen (\S+)$", site[""], re.M) == [f"{PUBLIC_IP}:{port}" for port, _, _ in entries]
    assert set(site) - {""} == {f"{PUBLIC_IP}:80"} | {f"{PUBLIC_IP}:{port}" for port, _, _ in entries}
    tls = tmp_path / "etc"
    for port, backend, _ in entries:
        lines = [line.strip() for line in site[f"{PUBLIC_IP}:{port}"].splitlines()]
        assert {"SSLEngine on", f"SSLCertificateFile {tls}/public-tls.crt", f"SSLCertificateKeyFile {tls}/public-tls.key",
                "ProxyPreserveHost On", "RequestHeader set X-Forwarded-Proto https", "LimitRequestBody 0",
                f"ProxyPass / http://{CONTROLLER_IP}:{backend}/ upgrade=websocket"} <= set(lines), port  # fmt: skip
        unset = {line.split()[2] for line in lines if line.startswith("RequestHeader unset") and line.endswith("early")}
        assert unset == {"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Prefix"}
    redirect = site[f"{PUBLIC_IP}:80"]
    assert 'Redirect permanent "https://%{SERVER_NAME}%{REQUEST_URI}"' in redirect and "Proxy" not in redirect
    assert "SSLProtocol -all +TLSv1.2 +TLSv1.3" in site[""]


def test_debians_listen_443_on_every_address_is_replaced_by_http_alone() -> None:
    """mod_ssl's ports.conf would listen on *:443: the step's ports.conf keeps port 80 only (the site has TLS)."""
    step = _step("public-tls")
    body = re.search(r"^write_file /etc/apache2/ports.conf 0644 <<'EOF'\n(.*?)^EOF$", step, re.M | re.S)
    assert body, "public-tls writes no ports.conf"
    assert [line for line in body.group(1).splitlines() if not line.startswith("#")] == ["Listen 80"]
    assert re.search(r"^for mod in ssl proxy proxy_http headers; do$", step, re.M)


# ------------------------------------------------------------------------------- backends on the management address
#: How each proxied service leaves "every address" for MGMT_IP: Debian's uwsgi init scripts read /etc/default/<their
#: NAME= line> (neutron-api's NAME is neutron-server), glance-api runs without uwsgi (bind_host), the Swift proxy's
#: init hands bind_ip to uwsgi, nova's console proxy reads novncproxy_host.
BINDS = {
    5000: ("keystone", "uwsgi", "keystone"),
    8778: ("placement", "uwsgi", "placement-api"),
    8774: ("nova-controller", "uwsgi", "nova-api"),
    9696: ("neutron-controller", "uwsgi", "neutron-server"),
    8776: ("cinder-controller", "uwsgi", "cinder-api"),
    9292: ("glance", "ini", ('ini_merge "$conf" root:glance', "DEFAULT", "bind_host")),
    8080: ("swift-proxy", "ini", ('ini_merge "$conf" root:swift', "DEFAULT", "bind_ip")),
    6080: ("nova-controller", "ini", ('ini_merge "$conf" <<EOF2', "vnc", "novncproxy_host")),
}


def _section(text: str, section: str) -> str:
    return re.search(rf"^\[{section}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)  # type: ignore[union-attr]


def test_every_proxied_service_listens_on_the_management_address(tmp_path: Path) -> None:
    backends = {port: step for port, backend, step in _public_tls(tmp_path) if port == backend}
    assert {port: step for port, (step, _, _) in BINDS.items()} == backends
    for step_name, kind, how in BINDS.values():
        step = _step(step_name)
        if kind == "uwsgi":
            assert re.search(rf"^uwsgi_on_mgmt {how}\b", step, re.M), step_name
            assert f"/etc/default/{how}" in " ".join(re.findall(r'^svc_apply "([^"]*)"', step, re.M | re.S)), (
                f"{step_name}: svc_apply must restart the service when /etc/default/{how} changes")
        else:
            opener, section, key = how
            file = next(p for p in STEPS.glob("*.sh") if p.stem.endswith(step_name)).name
            settings = _settings(_section(_heredoc(file, opener.replace(" <<EOF2", "")), section))
            assert settings[key] == [MGMT_IP], (step_name, key)
    assert re.search(r"^uwsgi_on_mgmt nova-api-metadata\b", _step("nova-controller"), re.M), "8775: neutron only"


@pytest.mark.parametrize("args", ["--http-socket :5000 --ini /etc/keystone/keystone-uwsgi.ini",
                                  "--http-socket [::]:8774 --processes 2 --ini /etc/nova/nova-api-uwsgi.ini"])
def test_the_default_file_moves_debians_every_address_socket_to_the_management_address(tmp_path: Path,
                                                                                       args: str) -> None:
    """uwsgi_on_mgmt's file, read by Debian's init script (a dash script) after it built DAEMON_ARGS."""
    _ok(f'write_file() {{ cat >"{tmp_path}/default"; }}\nuwsgi_on_mgmt keystone', tmp_path)
    sourced = subprocess.run(["sh", "-c", f'DAEMON_ARGS="{args}"; . "{tmp_path}/default"; printf %s "$DAEMON_ARGS"'],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    port = args.split()[1].rsplit(":", 1)[1]
    assert sourced == args.replace(args.split()[1], f"{CONTROLLER_IP}:{port}")


def test_every_oslo_api_behind_the_proxy_builds_its_links_from_the_proxys_headers(tmp_path: Path) -> None:
    """Version discovery answers with the request's scheme and host: https://ELASTIC_IP:PORT only when the API
    trusts the proxy's X-Forwarded-Proto/-Host (Horizon has its own setting, Swift no such links)."""
    steps = {step for _, _, step in _public_tls(tmp_path)} - {"horizon", "swift-proxy"}
    for name in steps:
        assert re.search(r"^ini_behind_proxy \S+$", _step(name), re.M), name
    conf = tmp_path / "api.conf"
    _ok(f'ini_behind_proxy "{conf}"', tmp_path)
    assert _settings(_section(conf.read_text(), "oslo_middleware")) == {"enable_proxy_headers_parsing": ["true"]}


def test_the_public_tls_step_comes_after_every_service_it_fronts(tmp_path: Path) -> None:
    step = next(s for s in load_steps() if s.name == "public-tls")
    assert {name for _, _, name in _public_tls(tmp_path)} <= set(step.after)
    assert step.roles == ("controller",) and step.uses == ("public", "sockets")


def test_a_step_that_calls_an_optional_librarys_function_says_it_uses_it() -> None:
    """An SSM document holds only the optional libraries its header names: a call without it fails on the node."""
    for library in (LIB / "optional").glob("*.sh"):
        functions = re.findall(r"^([a-z_]+)\(\) \{", library.read_text(), re.M)
        for step in load_steps():
            calls = [f for f in functions if re.search(rf"^\s*(\S+=\$\()?{f}\b", step.body, re.M)]
            assert not calls or library.stem in step.uses, f"{step.path.name} calls {calls} without uses {library.stem}"


def test_a_step_that_uses_an_optional_library_also_uses_the_ones_it_calls() -> None:
    """nova.sh, cinder.sh and neutron.sh call service.sh's functions: a step naming one of them needs it too."""
    libraries = {p.stem: re.sub(r"^\s*#.*$", "", p.read_text(), flags=re.M) for p in (LIB / "optional").glob("*.sh")}
    functions = {name: re.findall(r"^([a-z_]+)\(\) \{", text, re.M) for name, text in libraries.items()}
    needs = {name: {other for other, defined in functions.items() if other != name
                    and any(re.search(rf"(^|[\s$(]){f}\b(?!\(\))", text, re.M) for f in defined)}
             for name, text in libraries.items()}  # fmt: skip
    assert needs["nova"] == needs["cinder"] == needs["neutron"] == {"service"}
    for step in load_steps():
        for used in step.uses:
            assert needs[used] <= set(step.uses), f"{step.path.name} uses {used}, which calls {needs[used]}"


# ------------------------------------------------------------------------------------------------- the certificate
def _openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _journal(out: str) -> str:
    return out.splitlines()[-1]


def test_the_first_run_makes_a_ca_and_a_certificate_for_the_elastic_ip_and_keeps_them_in_the_store(
    tmp_path: Path,
) -> None:
    out = _ok("tls_ensure\n_osa_changes", tmp_path)
    assert "tls:made" in _journal(out)
    store, etc = tmp_path / "store", tmp_path / "etc"
    names = ["public-tls-ca.crt", "public-tls.crt", "public-tls.key"]
    assert sorted(p.name for p in store.iterdir()) == names == sorted(p.name for p in etc.iterdir())
    assert _mode(etc / "public-tls.key") == 0o600 and _mode(store / "public-tls.key") & 0o077 == 0
    assert (etc / "public-tls.key").stat().st_uid == os.getuid()
    assert _mode(etc / "public-tls.crt") == _mode(etc / "public-tls-ca.crt") == 0o644
    ca, crt = etc / "public-tls-ca.crt", etc / "public-tls.crt"
    assert _openssl("verify", "-CAfile", str(ca), str(crt)).strip() == f"{crt}: OK"
    assert f"IP Address:{EIP}, IP Address:{PUBLIC_IP}" in _openssl("x509", "-in", str(crt), "-noout", "-ext",
                                                                   "subjectAltName")  # fmt: skip
    assert "CA:TRUE" in _openssl("x509", "-in", str(ca), "-noout", "-ext", "basicConstraints")
    assert "prime256v1" in _openssl("pkey", "-in", str(etc / "public-tls.key"), "-noout", "-text")
    end = _openssl("x509", "-in", str(crt), "-noout", "-enddate").strip().split("=", 1)[1]
    expires = dt.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    assert expires - dt.datetime.now(dt.UTC) > dt.timedelta(days=9 * 365)
    assert [p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith("changes.")] == [], (
        "the CA's key and the work folder are gone")


def test_later_runs_and_a_rebuilt_controller_reuse_the_stores_certificate_byte_for_byte(tmp_path: Path) -> None:
    _ok("tls_ensure", tmp_path)
    store, etc = tmp_path / "store", tmp_path / "etc"
    made = {p.name: p.read_bytes() for p in store.iterdir()}
    assert _journal(_ok("tls_ensure\n_osa_changes", tmp_path)) == "nothing changed"
    for path in etc.iterdir():  # a replaced root volume: the store is all that is left
        path.unlink()
    assert "tls:made" not in _journal(_ok("tls_ensure\n_osa_changes", tmp_path))
    assert {p.name: p.read_bytes() for p in store.iterdir()} == made == {p.name: p.read_bytes() for p in etc.iterdir()}


def test_a_store_that_fails_to_answer_twice_is_asked_again_before_a_new_certificate_is_made(tmp_path: Path) -> None:
    """S3 answers a missing object as it answers a denied one: a passing error must not replace the certificate
    clients trust."""
    _ok("tls_ensure", tmp_path)
    made = (tmp_path / "store" / "public-tls.crt").read_bytes()
    flaky = ('eval "$(declare -f artifact_get | sed 1s/artifact_get/real_get/)"; failed=0\n'
             'artifact_get() { if [[ $1 == public-tls.key ]] && ((failed < 2)); then failed=$((failed + 1)); return 1; fi\n'
             '    real_get "$@"; }\n')
    out = _ok(flaky + "tls_ensure\n_osa_changes", tmp_path)
    assert _journal(out) == "nothing changed"
    assert (tmp_path / "store" / "public-tls.crt").read_bytes() == made


def _own_certificate(tmp: Path, ip: str) -> tuple[Path, Path]:
    """A certificate as an operator brings it: self-signed here, for `ip`, with its key."""
    crt, key = tmp / f"own-{ip}.crt", tmp / f"own-{ip}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-days", "30",
             "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={ip}", "-addext", f"subjectAltName=IP:{ip}")
    return crt, key


def test_an_operators_own_certificate_in_the_store_replaces_the_generated_one(tmp_path: Path) -> None:
    _ok("tls_ensure", tmp_path)
    store, etc = tmp_path / "store", tmp_path / "etc"
    crt, key = _own_certificate(tmp_path, EIP)
    (store / "public-tls.crt").write_bytes(crt.read_bytes())
    (store / "public-tls.key").write_bytes(key.read_bytes())
    (store / "public-tls-ca.crt").unlink()  # a public CA's certificate: clients trust it already
    out = _ok("tls_ensure\n_osa_changes", tmp_path)
    assert "tls:made" not in _journal(out)
    assert (etc / "public-tls.crt").read_bytes() == crt.read_bytes()
    assert (etc / "public-tls.key").read_bytes() == key.read_bytes() and _mode(etc / "public-tls.key") == 0o600
    assert not (etc / "public-tls-ca.crt").exists(), "the generated CA no longer vouches for the certificate"


@pytest.mark.parametrize("fault", ["other key", "other address"])
def test_a_certificate_that_does_not_fit_stops_the_step_and_installs_nothing(tmp_path: Path, fault: str) -> None:
    _ok("tls_ensure", tmp_path)
    store, etc = tmp_path / "store", tmp_path / "etc"
    before = {p.name: p.read_bytes() for p in etc.iterdir()}
    crt, key = _own_certificate(tmp_path, EIP if fault == "other key" else "198.51.100.7")
    (store / "public-tls.crt").write_bytes(crt.read_bytes())
    if fault == "other address":
        (store / "public-tls.key").write_bytes(key.read_bytes())
    proc = _bash("tls_ensure", tmp_path)
    assert proc.returncode != 0
    assert ("is not the key of public-tls.crt" if fault == "other key" else f"does not name {EIP}") in proc.stderr
    assert {p.name: p.read_bytes() for p in etc.iterdir()} == before
    assert [p.name for p in (tmp_path / "run").iterdir() if not p.name.startswith("changes.")] == []


# ------------------------------------------------------------------------------------------------------ Horizon
def test_horizon_knows_https_from_the_proxys_header_and_stays_http_inside(tmp_path: Path) -> None:
    step = _step("horizon")
    block = re.search(r"cat <<EOF2\n(# BEGIN openstack-aws.*?# END openstack-aws\n)EOF2", step, re.S)
    assert block, "the horizon step's managed block is missing"
    facts = "".join(f"{k}={v}\n" for k, v in FACTS.items()) + "hosts=\"'x'\"\n"
    rendered = subprocess.run(["bash", "-c", f"{facts}cat <<EOF2\n{block.group(1)}EOF2"], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
    settings: dict[str, object] = {}
    exec(rendered, {}, settings)
    # Django reads the header as META["HTTP_X_FORWARDED_PROTO"]: the one the proxy sets (and replaces) in front of
    # Horizon's http://CONTROLLER_IP:80.
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    horizon = next(body for address, body in _site(tmp_path).items()
                   if f"ProxyPass / http://{CONTROLLER_IP}:80/" in body)  # fmt: skip
    assert "RequestHeader set X-Forwarded-Proto https" in horizon
    # Cookies marked secure would never come back over http inside the VPC.
    assert not {"SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"} & set(settings)
    assert "COOKIE_SECURE" not in step and "SECURE_PROXY_SSL_HEADER" not in step.split("# END openstack-aws")[1]


# ------------------------------------------------------------------------------------------------ the rig's proofs
def test_chromiums_pin_is_the_hash_of_the_certificates_public_key(tmp_path: Path) -> None:
    crt, _ = _own_certificate(tmp_path, EIP)
    der = subprocess.run(f"openssl x509 -in {crt} -noout -pubkey | openssl pkey -pubin -outform der | "
                         "openssl dgst -sha256 -binary | base64", shell=True, capture_output=True, text=True,
                         check=True).stdout.strip()  # fmt: skip
    assert spki_sha256(crt.read_text()) == der


def test_the_secret_scan_looks_for_the_keys_lines(tmp_path: Path) -> None:
    _, key = _own_certificate(tmp_path, EIP)
    lines = key_lines(key.read_text())
    assert lines and all(line in key.read_text() and not line.startswith("-----") for line in lines)
    names = {rig_config.PUBLIC_TLS_CA.name, rig_config.PUBLIC_TLS_CERT.name, rig_config.PUBLIC_TLS_KEY.name}
    assert names == set(_ok('echo "$TLS_CA $TLS_CRT $TLS_KEY"', tmp_path).split())
    on_node = subprocess.run(["bash", "-c", f'. "{LIB}/common.sh"; echo "$TLS_DIR/$TLS_KEY"'], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
    assert on_node == rig_config.NODE_TLS_KEY

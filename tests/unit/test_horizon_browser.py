"""The Horizon browser check drives real Chromium: it passes on working pages and fails on what a person would
call broken (an error page, a bounce back to the login form, a missing instance, a refused login)."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.rig.horizon_browser import CHROMEDRIVER, CHROMIUM, _driver, browse, spki_sha256

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="Debian's chromium and chromium-driver are not installed (tests/rig/host-setup.sh)")

LOGIN = ('<html><head><title>Login - OpenStack Dashboard</title></head><body><form method="post" '
         'action="/auth/login/"><input id="id_username" name="username"><input id="id_password" name="password" '
         'type="password"><button type="submit" id="loginBtn">Sign In</button></form>{alert}</body></html>')


def _fake_horizon(broken: dict[str, str]) -> ThreadingHTTPServer:
    """A stand-in for Horizon's login flow; `broken` maps a path to the page it answers instead."""

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.startswith("/auth/login"):
                return self._send(200, LOGIN.format(alert=""))
            if "session=ok" not in self.headers.get("Cookie", ""):
                return self._send(302, headers={"Location": f"/auth/login/?next={self.path}"})
            if self.path in broken:
                return self._send(200, broken[self.path])
            listing = "<table><tr><td>verify-instance</td></tr></table>" if "instances" in self.path else ""
            return self._send(200, f"<html><head><title>{self.path} - OpenStack Dashboard</title></head>"
                                   f"<body>{listing}</body></html>")

        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            if form.get("password") == ["secret"]:
                return self._send(302, headers={"Location": "/project/", "Set-Cookie": "session=ok; Path=/"})
            return self._send(200, LOGIN.format(alert='<div class="alert alert-danger">Invalid credentials.</div>'))

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def horizon(request: pytest.FixtureRequest) -> Iterator[str]:
    server = _fake_horizon(getattr(request, "param", {}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _verdicts(results: list[dict[str, object]]) -> dict[object, bool]:
    return {r["page"]: bool(r["ok"]) for r in results}


def test_working_pages_pass_and_leave_screenshots(horizon: str, tmp_path: Path) -> None:
    results = browse(horizon, "demo", "secret", "verify-instance", tmp_path, wait=5, settle=0.2)
    assert _verdicts(results) == {"login": True, "overview": True, "instances": True, "network-topology": True,
                                  "volumes": True, "object-store": True}
    assert (tmp_path / "demo-instances.png").stat().st_size > 0


@pytest.mark.parametrize("horizon", [{
    "/project/volumes/": "<html><body><h1>Something went wrong!</h1></body></html>",
    "/project/containers/": '<html><body><div class="alert alert-danger">Unable to retrieve containers.</div></body></html>',
    "/project/instances/": "<html><body>No items to display.</body></html>",
}], indirect=True)
def test_error_pages_messages_and_a_missing_instance_fail(horizon: str, tmp_path: Path) -> None:
    results = {r["page"]: r for r in browse(horizon, "demo", "secret", "verify-instance", tmp_path, wait=5, settle=0.2)}
    assert not results["volumes"]["ok"] and "error page" in str(results["volumes"]["detail"])
    assert not results["object-store"]["ok"] and "Unable to retrieve" in str(results["object-store"]["detail"])
    assert not results["instances"]["ok"] and "verify-instance" in str(results["instances"]["detail"])
    assert results["overview"]["ok"]


def test_a_refused_login_fails_and_opens_nothing(horizon: str, tmp_path: Path) -> None:
    results = browse(horizon, "admin", "wrong", "verify-instance", tmp_path, wait=5, settle=0.2)
    assert [(r["page"], r["ok"]) for r in results] == [("login", False)]


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    crt, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc",
                    "-days", "1", "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={name}", "-addext",
                    "subjectAltName=IP:127.0.0.1"], capture_output=True, check=True)  # fmt: skip
    return crt, key


@pytest.fixture
def tls_horizon(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The stand-in over https with a self-signed certificate (as the cloud's, which no system CA vouches for)."""
    crt, key = _certificate(tmp_path, "server")
    server = _fake_horizon({})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", crt
    server.shutdown()


def test_over_https_chromium_trusts_the_pinned_key_and_no_other(tls_horizon: tuple[str, Path], tmp_path: Path) -> None:
    """The rig's browser accepts the cloud's certificate by its key's hash (--ignore-certificate-errors-spki-list),
    never by ignoring certificate errors: pinned to another key, the same server is refused."""
    base, crt = tls_horizon
    results = browse(base, "demo", "secret", "verify-instance", tmp_path, wait=5, settle=0.2,
                     trust_spki=spki_sha256(crt.read_text()))
    assert [(r["page"], r["ok"]) for r in results][:2] == [("login", True), ("overview", True)], results
    other, _ = _certificate(tmp_path, "other")
    driver = _driver(str(tmp_path / "profile"), spki_sha256(other.read_text()))
    try:
        driver.get(f"{base}/auth/login/")
        assert "id_username" not in driver.page_source, "a certificate nobody vouches for was accepted"
    finally:
        driver.quit()

"""The Horizon browser check drives real Chromium: it passes on working pages and fails on what a person would
call broken (an error page, a bounce back to the login form, a missing instance, a refused login)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.rig.horizon_browser import CHROMEDRIVER, CHROMIUM, browse

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

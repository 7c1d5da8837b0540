"""The emulated IMDSv2 answers as EC2 does: tokens required, directories listed, any version prefix."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.imds.metadata import Eni, Instance, document
from tests.imds.server import serve

INSTANCE = Instance(
    instance_id="i-0123", region="eu-west-1", hostname="controller", user_data="#!/bin/sh\necho hi\n",
    enis=(Eni("02:00:ac:1f:20:0b", 0, ("172.31.32.11",), "172.31.32.0/24"),
          Eni("02:00:ac:1f:21:0c", 1, ("172.31.33.12", "172.31.33.50"), "172.31.33.0/24")),
)


@pytest.fixture
def base() -> Iterator[str]:
    other = Instance(instance_id="i-other", region="eu-west-1", hostname="compute1", enis=INSTANCE.enis[:1])
    server = serve({"127.0.0.1": document(INSTANCE), "127.0.0.2": document(other)}, "0.0.0.0", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _call(url: str, method: str = "GET", headers: dict[str, str] | None = None,
          source: str = "127.0.0.1") -> tuple[int, str]:
    """One request from `source` (the server tells instances apart by the client's address)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5, source_address=(source, 0))
    try:
        conn.request(method, parts.path, headers=headers or {})
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, body if response.status == 200 else ""
    finally:
        conn.close()


def _token(base: str, source: str = "127.0.0.1") -> str:
    status, token = _call(f"{base}/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "60"},
                          source)
    assert status == 200
    return token


def test_get_without_token_is_refused(base: str) -> None:
    assert _call(f"{base}/latest/meta-data/instance-id")[0] == 401
    assert _call(f"{base}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": "forged"})[0] == 401


def test_token_needs_a_valid_ttl(base: str) -> None:
    assert _call(f"{base}/latest/api/token", "PUT")[0] == 400
    assert _call(f"{base}/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "0"})[0] == 400


def test_tree_as_userdata_reads_it(base: str) -> None:
    h = {"X-aws-ec2-metadata-token": _token(base)}
    assert _call(f"{base}/latest/meta-data/network/interfaces/macs/", headers=h) == (
        200, "02:00:ac:1f:20:0b/\n02:00:ac:1f:21:0c/")
    mac = f"{base}/latest/meta-data/network/interfaces/macs/02:00:ac:1f:21:0c"
    assert _call(f"{mac}/device-number", headers=h) == (200, "1")
    assert _call(f"{mac}/local-ipv4s", headers=h) == (200, "172.31.33.12\n172.31.33.50")
    assert _call(f"{mac}/subnet-ipv4-cidr-block", headers=h) == (200, "172.31.33.0/24")
    assert _call(f"{base}/2021-03-23/meta-data/instance-id", headers=h) == (200, "i-0123")
    assert _call(f"{base}/latest/user-data", headers=h) == (200, "#!/bin/sh\necho hi\n")
    assert _call(f"{base}/latest/meta-data/nothing-here", headers=h)[0] == 404
    assert '"region": "eu-west-1"' in _call(f"{base}/latest/dynamic/instance-identity/document", headers=h)[1]


def test_each_client_sees_its_own_instance(base: str) -> None:
    h_other = {"X-aws-ec2-metadata-token": _token(base, "127.0.0.2")}
    assert _call(f"{base}/latest/meta-data/instance-id", headers=h_other, source="127.0.0.2") == (200, "i-other")
    # a token is bound to the client that asked for it
    assert _call(f"{base}/latest/meta-data/instance-id", headers=h_other)[0] == 401
    assert _call(f"{base}/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "60"},
                 "127.0.0.3")[0] == 403

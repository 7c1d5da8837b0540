"""The rig's check of the catalog a remote client gets: every public endpoint https on the Elastic IP."""

from __future__ import annotations

from tests.rig.proofs import public_catalog_problems

EIP = "203.0.113.10"


def _service(kind: str, **urls: str) -> dict:
    return {"type": kind, "endpoints": [{"interface": i, "url": u} for i, u in urls.items()]}


def test_a_catalog_public_on_the_elastic_ip_passes() -> None:
    catalog = [
        _service("identity", public=f"https://{EIP}:5000/v3/", internal="http://172.31.32.11:5000/v3/"),
        _service("object-store", public=f"https://{EIP}:8080/v1/AUTH_abc", admin="http://172.31.32.11:8080/v1"),
    ]
    assert public_catalog_problems(catalog, EIP) == []


def test_a_plain_http_public_endpoint_fails() -> None:
    """The release before TLS: public endpoints on the Elastic IP, but http."""
    catalog = [_service("identity", public=f"https://{EIP}:5000/v3/"), _service("image", public=f"http://{EIP}:9292")]
    assert public_catalog_problems(catalog, EIP) == [f"image: http://{EIP}:9292"]


def test_the_mixed_catalog_of_issue_11_fails_on_each_private_public_endpoint() -> None:
    catalog = [
        _service("identity", public=f"https://{EIP}:5000/v3/"),
        _service("image", public="http://172.31.32.11:9292", internal="http://172.31.32.11:9292"),
        _service("compute", public="http://172.31.32.11:8774/v2.1"),
    ]
    assert public_catalog_problems(catalog, EIP) == [
        "image: http://172.31.32.11:9292",
        "compute: http://172.31.32.11:8774/v2.1",
    ]


def test_a_service_without_a_public_endpoint_fails() -> None:
    catalog = [_service("placement", internal="http://172.31.32.11:8778")]
    assert public_catalog_problems(catalog, EIP) == ["placement: no public endpoint"]

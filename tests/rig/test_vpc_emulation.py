"""The emulated VPC enforces AWS's rules, and this test would notice if it did not.

It builds its own small VPC (bridge rigtbr, namespaces rigt-*) from the same rule generators the rig uses
(vpc.filter_ruleset, vpc.igw_ruleset), so it runs beside a running rig without touching it:

  rigt-n1 (172.31.33.11, Elastic IP 203.0.113.10) ─ port rigt-p1 ┐
  rigt-n2 (172.31.33.12, no Elastic IP)           ─ port rigt-p2 ┼ bridge rigtbr ─ rigt-r (172.31.33.1)
                                                                                   └ rigt-i (igw) ─ rigt-x (198.51.100.10)
Runs only as root with ip, nft and ping on the host; otherwise skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.rig import config, vpc, vpc_services

BR = "rigtbr"
N1, N2, ROUTER, IGW, NET = "rigt-n1", "rigt-n2", "rigt-r", "rigt-i", "rigt-x"
TABLE = "rigtest"
IP1, IP2, FOREIGN = "172.31.33.11", "172.31.33.12", "172.31.33.50"
MAC1, MAC2 = config.mac_for(IP1), config.mac_for(IP2)

pytestmark = [
    pytest.mark.rig,
    pytest.mark.skipif(os.geteuid() != 0, reason="the VPC emulation test needs root (namespaces, nft)"),
    pytest.mark.skipif(not all(shutil.which(t) for t in ("ip", "nft", "ping")),
                       reason="rig tooling missing (ip, nft, ping): run tests/rig/host-setup.sh"),
]


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}")
    return proc


def ns(name: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", name, *cmd, check=check)


def ping(src_ns: str, dst: str, source: str | None = None) -> bool:
    extra = ["-I", source] if source else []
    return ns(src_ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", *extra, dst, check=False).returncode == 0


def table(check1: bool = True, check2: bool = True) -> list[dict[str, Any]]:
    return [
        {"eni_id": "eni-test1", "node": "n1", "device_index": 0, "mac": MAC1, "subnet": config.SUBNET_B,
         "private_ip": IP1, "addresses": [IP1], "source_dest_check": check1, "elastic_ip": config.ELASTIC_IP,
         "host_port": "rigt-p1"},
        {"eni_id": "eni-test2", "node": "n2", "device_index": 0, "mac": MAC2, "subnet": config.SUBNET_B,
         "private_ip": IP2, "addresses": [IP2], "source_dest_check": check2, "elastic_ip": "",
         "host_port": "rigt-p2"},
    ]


def apply(tab: list[dict[str, Any]]) -> None:
    subprocess.run(["nft", "-f", "-"], input=vpc.filter_ruleset(tab, TABLE), text=True, check=True)


def flush_neigh() -> None:
    for name in (N1, N2, ROUTER):
        ns(name, "ip", "neigh", "flush", "all", check=False)


def _teardown() -> None:
    for name in (N1, N2, ROUTER, IGW, NET):
        sh("ip", "netns", "del", name, check=False)
    for link in (BR, "rigt-p1", "rigt-p2", "rigt-pr"):
        sh("ip", "link", "del", link, check=False)
    sh("nft", "delete", "table", "bridge", TABLE, check=False)


@pytest.fixture(scope="module")
def mini_vpc() -> Iterator[None]:
    _teardown()
    try:
        sh("ip", "link", "add", BR, "type", "bridge")
        sh("ip", "link", "set", BR, "up")
        for name in (N1, N2, ROUTER, IGW, NET):
            sh("ip", "netns", "add", name)
            ns(name, "ip", "link", "set", "lo", "up")
            ns(name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        for name, port, mac, addr in ((N1, "rigt-p1", MAC1, IP1), (N2, "rigt-p2", MAC2, IP2),
                                      (ROUTER, "rigt-pr", config.mac_for(config.GW_B), config.GW_B)):
            sh("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name)
            ns(name, "ip", "link", "set", "dev", "eth0", "address", mac)
            ns(name, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
            ns(name, "ip", "link", "set", "dev", "eth0", "up")
            sh("ip", "link", "set", port, "master", BR, "up")
        for name in (N1, N2):
            ns(name, "ip", "route", "add", "default", "via", config.GW_B)
        # router <-> igw <-> internet, as vpc.ensure_network builds them
        sh("ip", "link", "add", "igw", "netns", ROUTER, "type", "veth", "peer", "name", "vpc", "netns", IGW)
        sh("ip", "link", "add", "inet", "netns", IGW, "type", "veth", "peer", "name", "eth0", "netns", NET)
        for name, ifname, addr in ((ROUTER, "igw", "169.254.100.1/30"), (IGW, "vpc", "169.254.100.2/30"),
                                   (IGW, "inet", f"{config.IGW_INTERNET_IP}/24"), (NET, "eth0", f"{config.PROBE_IP}/24")):
            ns(name, "ip", "addr", "add", addr, "dev", ifname)
            ns(name, "ip", "link", "set", "dev", ifname, "up")
        for name in (ROUTER, IGW):
            ns(name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        ns(ROUTER, "ip", "route", "add", "default", "via", "169.254.100.2")
        ns(IGW, "ip", "route", "add", "172.31.0.0/16", "via", "169.254.100.1")
        ns(NET, "ip", "route", "add", "203.0.113.0/24", "via", config.IGW_INTERNET_IP)
        subprocess.run(["ip", "netns", "exec", IGW, "nft", "-f", "-"], input=vpc.igw_ruleset(table()),
                       text=True, check=True)
        apply(table())
        yield
    finally:
        _teardown()


def test_allowed_traffic_flows(mini_vpc: None) -> None:
    """The baseline: the filters let an ENI's own traffic through (so the drops below are the rules' doing)."""
    assert ping(N1, IP2)
    assert ping(N2, config.GW_B)


def test_foreign_source_mac_is_dropped(mini_vpc: None) -> None:
    flush_neigh()
    sh("nft", "delete", "table", "bridge", TABLE)
    ns(N2, "ip", "link", "set", "dev", "eth0", "address", "02:11:22:33:44:55")
    try:
        assert ping(N2, IP1), "control: without the filter the spoofed MAC gets through"
        flush_neigh()
        apply(table())
        before = vpc.drop_counters(TABLE)["eni-test2 foreign source MAC"]
        assert not ping(N2, IP1), "a frame with a source MAC that is not the ENI's must be dropped"
        assert vpc.drop_counters(TABLE)["eni-test2 foreign source MAC"] > before
    finally:
        ns(N2, "ip", "link", "set", "dev", "eth0", "address", MAC2)
        flush_neigh()
    assert ping(N2, IP1)


def test_foreign_source_ip_dropped_until_check_is_off(mini_vpc: None) -> None:
    ns(N2, "ip", "addr", "add", f"{FOREIGN}/32", "dev", "eth0")
    try:
        apply(table(check2=True))
        flush_neigh()
        before = vpc.drop_counters(TABLE)
        assert not ping(N2, IP1, source=FOREIGN), "a foreign source must be dropped while the check is on"
        after = vpc.drop_counters(TABLE)
        assert (after["eni-test2 source check"] + after["eni-test2 ARP foreign sender"]
                > before["eni-test2 source check"] + before["eni-test2 ARP foreign sender"])
        apply(table(check2=False))
        flush_neigh()
        assert ping(N2, IP1, source=FOREIGN), "with source/dest check off the packet must pass"
    finally:
        ns(N2, "ip", "addr", "del", f"{FOREIGN}/32", "dev", "eth0", check=False)
        apply(table())


def test_destination_check_drops_packets_for_other_addresses(mini_vpc: None) -> None:
    """A packet routed through an ENI (destination not its address) is delivered only when the check is off."""
    ns(N1, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    ns(N2, "ip", "route", "add", config.PROBE_IP, "via", IP1)
    try:
        apply(table(check1=True))
        flush_neigh()
        before = vpc.drop_counters(TABLE)["eni-test1 dest check"]
        ns(N2, "ping", "-c", "1", "-W", "1", config.PROBE_IP, check=False)
        assert vpc.drop_counters(TABLE)["eni-test1 dest check"] > before
    finally:
        ns(N2, "ip", "route", "del", config.PROBE_IP, check=False)
        ns(N1, "sysctl", "-qw", "net.ipv4.ip_forward=0")
        apply(table())


def test_elastic_ip_translation(mini_vpc: None) -> None:
    """n1 reaches the internet as 203.0.113.10, and the internet reaches n1 through it. The internet
    namespace has no route to 172.31.0.0/16, so replies arrive only if the igw translated."""
    assert "172.31" not in ns(NET, "ip", "route").stdout
    assert ping(N1, config.PROBE_IP)
    assert ping(NET, config.ELASTIC_IP)
    conntrack = ns(IGW, "cat", "/proc/net/nf_conntrack", check=False).stdout
    if conntrack:
        assert config.ELASTIC_IP in conntrack


def test_address_without_elastic_ip_cannot_reach_internet(mini_vpc: None) -> None:
    before = vpc.drop_counters("igw", netns=IGW, family="ip")["no Elastic IP"]
    assert ping(N2, config.GW_B), "control: n2 itself is reachable"
    assert not ping(N2, config.PROBE_IP), "an address without an Elastic IP must not reach the internet"
    assert vpc.drop_counters("igw", netns=IGW, family="ip")["no Elastic IP"] > before


def test_secondary_address_with_its_own_elastic_ip_is_reached_from_the_internet(mini_vpc: None) -> None:
    """A floating IP as on AWS: a secondary private address of an ENI with an Elastic IP of its own. Reached from
    the internet only once the ENI table lists it (filter and internet gateway both read the table)."""
    secondary, eip = FOREIGN, "203.0.113.50"
    with_secondary = table()
    with_secondary[1] |= {"addresses": [IP2, secondary], "elastic_ips": {secondary: eip}}

    def igw(tab: list[dict[str, Any]]) -> None:
        subprocess.run(["ip", "netns", "exec", IGW, "nft", "-f", "-"], input=vpc.igw_ruleset(tab), text=True,
                       check=True)

    ns(N2, "ip", "addr", "add", f"{secondary}/32", "dev", "eth0")
    try:
        flush_neigh()
        assert not ping(NET, eip), "an address the ENI table does not list has no Elastic IP"
        apply(with_secondary)
        igw(with_secondary)
        flush_neigh()
        assert ping(NET, eip), "the internet reaches the secondary address through its own Elastic IP"
        assert ping(NET, config.ELASTIC_IP), "and the primary Elastic IP still maps to its own address"
    finally:
        ns(N2, "ip", "addr", "del", f"{secondary}/32", "dev", "eth0", check=False)
        igw(table())
        apply(table())


# One DNS A query over UDP; prints the response code and the addresses (no resolver library on the host).
_DNS_QUERY = r"""
import socket, struct, sys
server, name = sys.argv[1:3]
query = struct.pack(">HHHHHH", 0x1d0e, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(3)
sock.sendto(query, (server, 53))
reply = sock.recv(4096)
i = len(query)
addrs = []
for _ in range(struct.unpack(">H", reply[6:8])[0]):
    i += 2 if reply[i] & 0xC0 == 0xC0 else len(reply[i:].split(b"\0", 1)[0]) + 1
    rtype, _, _, length = struct.unpack(">HHIH", reply[i:i + 10])
    i += 10
    if rtype == 1 and length == 4:
        addrs.append(socket.inet_ntoa(reply[i:i + 4]))
    i += length
print(reply[3] & 15, *addrs)
"""


def dns_a(src_ns: str, server: str, name: str) -> list[str]:
    return ns(src_ns, "python3", "-c", _DNS_QUERY, server, name).stdout.split()


def test_the_vpc_resolver_answers_its_own_name_and_forwards_nothing(mini_vpc: None) -> None:
    """The rig's VPC resolver (base + 2, in the VPC router namespace) answers PROBE_NAME for a node; any other name
    is refused (rcode 5): it has no upstream, so no query leaves this machine."""
    ns(ROUTER, "ip", "addr", "add", f"{config.VPC_DNS}/32", "dev", "lo")
    server = subprocess.Popen(["ip", "netns", "exec", ROUTER, *vpc_services.resolver_args()],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if ns(ROUTER, "ss", "-Hlun", f"src {config.VPC_DNS}:53").stdout.strip():
                break
            time.sleep(0.1)
        assert dns_a(N1, config.VPC_DNS, config.PROBE_NAME) == ["0", config.PROBE_IP]
        assert dns_a(N1, config.VPC_DNS, "example.com") == ["5"]
    finally:
        server.terminate()
        server.wait()

"""The emulated VPC: ENI table, per-ENI bridge filters, VPC router, internet gateway and a fake internet.

Packet path (see tests/rig/README.md):

  node ethN ── veth ── rv-<node>-N ─┐ bridge rigbrA/rigbrB (nft bridge table "rigvpc" filters each ENI port)
                                    ├─ rv-rtr-A/B ── netns rig-vpcrouter (.1 of both subnets, NAT gateway for A)
                                    │                      └── netns rig-igw (1:1 Elastic IP NAT, drops the rest)
                                    │                              └── netns rig-internet (198.51.100.10)
  host 172.31.32.2 (apt cache) on rigbrA
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from . import config, state, vpc_services
from .sh import RigError, log, ok, pid_alive, run

R_A, R_B = "rv-rtr-A", "rv-rtr-B"  # host ends of the VPC router's legs on the subnet bridges
ROUTER_MAC_A, ROUTER_MAC_B = config.mac_for(config.GW_A), config.mac_for(config.GW_B)
LINK_NET = ("169.254.100.1", "169.254.100.2")  # vpc-router <-> igw


# ---------------------------------------------------------------- ENI table
def default_eni_table() -> list[dict[str, Any]]:
    table = []
    for spec in config.NODES:
        for eni in spec.enis:
            table.append({
                "eni_id": config.eni_id(spec.name, eni.index),
                "node": spec.name,
                "device_index": eni.index,
                "mac": eni.mac,
                "subnet": eni.cidr,
                "private_ip": eni.ip,
                "addresses": eni.addresses,
                "source_dest_check": True,
                "elastic_ip": eni.elastic_ip,
                "elastic_ips": eni.elastic_ips,
                "host_port": spec.host_if(eni.index),
            })
    return table


def load_eni_table(path: Path | None = None) -> list[dict[str, Any]]:
    """The ENI table as data (what EC2 DescribeNetworkInterfaces would say); also for moto-based code."""
    path = path or config.ENI_TABLE
    try:
        return json.loads(path.read_text())["network_interfaces"]
    except FileNotFoundError:
        return default_eni_table()


def save_eni_table(table: list[dict[str, Any]]) -> None:
    config.BUILD.mkdir(parents=True, exist_ok=True)
    tmp = config.ENI_TABLE.with_suffix(".tmp")
    tmp.write_text(json.dumps({"network_interfaces": table}, indent=1) + "\n")
    tmp.replace(config.ENI_TABLE)


def find_eni(table: list[dict[str, Any]], selector: str) -> dict[str, Any]:
    """Find an ENI by id (eni-...) or by node:device_index (controller:2)."""
    for eni in table:
        if selector == eni["eni_id"] or selector == f"{eni['node']}:{eni['device_index']}":
            return eni
    raise RigError(f"no ENI {selector!r}; known: " + ", ".join(f"{e['eni_id']} ({e['node']}:{e['device_index']})"
                                                           for e in table))


def set_source_dest_check(selector: str, enabled: bool) -> dict[str, Any]:
    """The rig's ModifyNetworkInterfaceAttribute(SourceDestCheck): rewrite the table, then the filter."""
    table = load_eni_table()
    eni = find_eni(table, selector)
    eni["source_dest_check"] = enabled
    save_eni_table(table)
    if ok(["nft", "list", "table", "bridge", config.NFT_TABLE]):
        apply_filters(table)
    return eni


# ---------------------------------------------------------------- ENI filters (nft bridge family)
def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _chain_name(port: str) -> str:
    return port.replace("-", "_")


def filter_ruleset(table: list[dict[str, Any]], name: str = config.NFT_TABLE) -> str:
    """One nft bridge table: each ENI's bridge port gets a 'leave' and a 'deliver' chain.

    leave (frames from the node): source MAC must be the ENI's, and so must the ARP sender MAC; while
    source/dest check is on, the IPv4 source and the ARP sender address must be one of its addresses;
    anything but IPv4/ARP is dropped.
    deliver (frames to the node): unicast only to the ENI's MAC (no flooding, as in a VPC); ARP requests only
    for its addresses (the VPC resolves only assigned addresses); while the check is on, ARP replies and IPv4
    only to its addresses.
    """
    leave_map, deliver_map, chains = [], [], []
    for eni in table:
        port, mac, addrs, eid = eni["host_port"], eni["mac"], eni["addresses"], eni["eni_id"]
        chain = _chain_name(port)
        leave_map.append(f'"{port}" : jump leave_{chain}')
        deliver_map.append(f'"{port}" : jump deliver_{chain}')
        check = eni["source_dest_check"]
        leave = [f'ether saddr != {mac} counter drop comment "{eid} foreign source MAC"',
                 f'ether type arp arp saddr ether != {mac} counter drop comment "{eid} ARP foreign MAC"']
        deliver = [f'ether daddr != {{ {mac}, ff:ff:ff:ff:ff:ff }} counter drop comment "{eid} not its MAC"']
        if check:
            # An ENI without its address yet asks the VPC's DHCP from 0.0.0.0 (the router port has no filter).
            leave += ['ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return',
                      f'ether type arp arp saddr ip != {_set([*addrs, "0.0.0.0"])} counter drop '
                      f'comment "{eid} ARP foreign sender"',
                      f'ether type ip ip saddr != {_set(addrs)} counter drop comment "{eid} source check"']
            deliver += [f'ether type arp arp daddr ip != {_set(addrs)} counter drop comment "{eid} ARP not for it"',
                        f'ether type ip ip daddr != {_set(addrs)} counter drop comment "{eid} dest check"']
        else:
            deliver.append(f'ether type arp arp operation request arp daddr ip != {_set(addrs)} counter drop '
                           f'comment "{eid} ARP not for it"')
        leave.append(f'ether type != {{ ip, arp }} counter drop comment "{eid} not IPv4/ARP"')
        deliver.append(f'ether type != {{ ip, arp }} counter drop comment "{eid} not IPv4/ARP"')
        chains.append(f"  chain leave_{chain} {{\n" + "".join(f"    {r}\n" for r in leave) + "  }")
        chains.append(f"  chain deliver_{chain} {{\n" + "".join(f"    {r}\n" for r in deliver) + "  }")
    lm, dm = ", ".join(leave_map), ", ".join(deliver_map)
    return (
        f"table bridge {name}\ndelete table bridge {name}\ntable bridge {name} {{\n"
        + "\n".join(chains)
        + f"\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n"
        f"    iifname vmap {{ {lm} }}\n    oifname vmap {{ {dm} }}\n  }}\n"
        f"  chain input {{\n    type filter hook input priority 0; policy accept;\n    iifname vmap {{ {lm} }}\n  }}\n"
        f"  chain output {{\n    type filter hook output priority 0; policy accept;\n    oifname vmap {{ {dm} }}\n  }}\n"
        "}\n"
    )


def apply_filters(table: list[dict[str, Any]] | None = None) -> None:
    table = table if table is not None else load_eni_table()
    state.add("nft", ["bridge", config.NFT_TABLE])
    run(["nft", "-f", "-"], input=filter_ruleset(table))


def drop_counters(name: str = config.NFT_TABLE, netns: str | None = None, family: str = "bridge") -> dict[str, int]:
    """Packets dropped per rule comment, e.g. {'eni-... source check': 3}."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    out = run([*prefix, "nft", "-j", "list", "table", family, name]).stdout
    counts: dict[str, int] = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expr in rule["expr"]:
            if "counter" in expr:
                counts[rule["comment"]] = expr["counter"]["packets"]
    return counts


# ---------------------------------------------------------------- router, igw, internet namespaces
def _ns(ns: str, *cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run(["ip", "netns", "exec", ns, *cmd], check=check, input=input)


def _ensure_ns(ns: str) -> bool:
    """Create a namespace; False when it already existed."""
    if Path(f"/run/netns/{ns}").exists():
        return False
    state.add("netns", ns)
    run(["ip", "netns", "add", ns])
    _ns(ns, "ip", "link", "set", "lo", "up")
    _ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    _ns(ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
    return True


def _veth_to_ns(host_name: str, ns: str, inner: str, mac: str, addr: str, bridge: str) -> None:
    state.add("links", host_name)
    run(["ip", "link", "add", host_name, "type", "veth", "peer", "name", inner, "netns", ns])
    _ns(ns, "ip", "link", "set", "dev", inner, "address", mac)
    _ns(ns, "ip", "link", "set", "dev", inner, "mtu", "9001")  # jumbo frames inside the VPC, 1500 beyond the router
    run(["ip", "link", "set", host_name, "mtu", "9001"])
    _ns(ns, "ip", "addr", "add", addr, "dev", inner)
    _ns(ns, "ip", "link", "set", "dev", inner, "up")
    run(["ip", "link", "set", host_name, "master", bridge, "up"])


def _pair_between(ns1: str, if1: str, ns2: str, if2: str, addr1: str, addr2: str) -> None:
    run(["ip", "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2])
    for ns, ifname, addr in ((ns1, if1, addr1), (ns2, if2, addr2)):
        _ns(ns, "ip", "addr", "add", addr, "dev", ifname)
        _ns(ns, "ip", "link", "set", ifname, "up")


def elastic_ip_pairs(table: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(Elastic IP, private address) for every address of every ENI that has one."""
    def of(eni: dict[str, Any]) -> dict[str, str]:  # a table written before secondary addresses existed
        return eni.get("elastic_ips") or ({eni["private_ip"]: eni["elastic_ip"]} if eni.get("elastic_ip") else {})

    return [(public, private) for e in table for private, public in of(e).items()]


def igw_ruleset(table: list[dict[str, Any]]) -> str:
    pairs = elastic_ip_pairs(table)
    pairs.append((config.NAT_GW_EIP, config.NAT_GW_IP))
    inbound = ", ".join(f"{pub} : {priv}" for pub, priv in pairs)
    outbound = ", ".join(f"{priv} : {pub}" for pub, priv in pairs)
    privs = _set([priv for _, priv in pairs])
    return f"""
table ip igw
delete table ip igw
table ip igw {{
  chain igw_pre {{ type nat hook prerouting priority dstnat; iifname "inet" dnat to ip daddr map {{ {inbound} }}; }}
  chain igw_post {{ type nat hook postrouting priority srcnat; oifname "inet" snat to ip saddr map {{ {outbound} }}; }}
  chain igw_forward {{
    type filter hook forward priority 0; policy drop;
    iifname "vpc" oifname "inet" ip saddr {privs} accept
    iifname "inet" oifname "vpc" ip daddr {privs} accept
    counter drop comment "no Elastic IP"
  }}
}}
"""


ROUTER_RULESET = f"""
table ip vpcrouter
delete table ip vpcrouter
table ip vpcrouter {{
  chain post {{
    type nat hook postrouting priority srcnat;
    oifname "igw" ip saddr {config.SUBNET_A} snat to {config.NAT_GW_IP} comment "NAT gateway of subnet A"
  }}
}}
"""


def ensure_network() -> None:
    """Create the router, igw and internet namespaces (idempotent) and the ENI filters."""
    if _ensure_ns(config.NS_ROUTER):
        _ns(config.NS_ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _veth_to_ns(R_A, config.NS_ROUTER, "subA", ROUTER_MAC_A, f"{config.GW_A}/24", config.BRIDGE_A)
        _veth_to_ns(R_B, config.NS_ROUTER, "subB", ROUTER_MAC_B, f"{config.GW_B}/24", config.BRIDGE_B)
    if _ensure_ns(config.NS_IGW):
        _ns(config.NS_IGW, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _pair_between(config.NS_ROUTER, "igw", config.NS_IGW, "vpc", f"{LINK_NET[0]}/30", f"{LINK_NET[1]}/30")
        _ns(config.NS_ROUTER, "ip", "route", "replace", "default", "via", LINK_NET[1])
        _ns(config.NS_IGW, "ip", "route", "replace", "172.31.0.0/16", "via", LINK_NET[0])
    if _ensure_ns(config.NS_INTERNET):
        _pair_between(config.NS_IGW, "inet", config.NS_INTERNET, "eth0",
                      f"{config.IGW_INTERNET_IP}/24", f"{config.PROBE_IP}/24")
        _ns(config.NS_INTERNET, "ip", "route", "replace", "203.0.113.0/24", "via", config.IGW_INTERNET_IP)
    table = load_eni_table()
    save_eni_table(table)
    _ns(config.NS_ROUTER, "nft", "-f", "-", input=ROUTER_RULESET)
    _ns(config.NS_IGW, "nft", "-f", "-", input=igw_ruleset(table))
    apply_filters(table)
    _ensure_http_responder()
    vpc_services.ensure()


def _ensure_http_responder() -> None:
    """A tiny HTTP server on the probe address: GET / answers 'rig-internet-ok'."""
    pid = state.load()["pids"].get("internet-http")
    if pid_alive(pid):
        return
    www = config.BUILD / "internet-www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text("rig-internet-ok\n")
    logf = open(config.BUILD / "logs" / "internet-http.log", "ab")  # noqa: SIM115 (handed to the child)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", config.NS_INTERNET, "python3", "-m", "http.server", "80", "--bind",
         config.PROBE_IP, "--directory", str(www)],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    state.set_item("pids", "internet-http", proc.pid)
    log(f"internet: {config.PROBE_IP} answers ping and HTTP (pid {proc.pid})")

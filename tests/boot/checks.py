"""The boot proof's verdicts, from the guest probe's reports (pure: unit-tested on recorded and edited reports).

Reports: `up` (a booted node's state) and `down` (hashes at shutdown) per boot; boot 1 is the first boot (userdata,
then the cloud-config reboot), boot 2 the boot after it, boot 3 a later boot with the NICs in another PCI order.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from tests.boot import seed
from tests.imds.metadata import Instance

Report = dict[str, Any]
PINNED = {0: "mgmt0", 1: "prov0", 2: "pub0"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def env_file(text: str) -> dict[str, str]:
    """KEY=value lines as bash's `.` reads them (values may be double-quoted)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            values[key] = " ".join(shlex.split(value)) if value else ""
    return values


def names_by_mac(up: Report) -> dict[str, str]:
    return {link["address"]: link["ifname"] for link in up.get("links") or [] if link.get("link_type") == "ether"}


def pci_slots(up: Report) -> dict[str, str]:
    """MAC -> the PCI address of its NIC in that boot."""
    slots = up.get("pci_slot") or {}
    return {mac: slots.get(name, "?") for mac, name in names_by_mac(up).items()}


def check_names(instance: Instance, ups: dict[str, Report]) -> Check:
    expected = {eni.mac: PINNED[eni.device_number] for eni in instance.enis}
    seen = {boot: names_by_mac(up) for boot, up in ups.items()}
    slots = {boot: pci_slots(up) for boot, up in ups.items()}
    same = all({mac: names.get(mac) for mac in expected} == expected for names in seen.values())
    # Every ENI sits in another PCI slot in some boot, or the boots did not test the order at all.
    moved = all(len({s.get(mac) for s in slots.values()}) == len(slots) for mac in expected)
    return Check("names pinned by MAC whatever the PCI order", same and moved and len(ups) >= 2,
                 f"expected {expected}; seen {seen}; PCI slot per MAC and boot {slots}")


def check_hostname_first(up: Report, boot1_start_ns: int) -> Check:
    """/etc/hostname and /etc/hosts were written before the first package of the first boot was unpacked."""
    installed = {pkg: ns for pkg, ns in (up.get("dpkg_list_mtime_ns") or {}).items() if ns > boot1_start_ns}
    written = up.get("mtime_ns") or {}
    first = min(installed.values()) if installed else None
    ok = bool(installed) and len(written) == 2 and all(ns < first for ns in written.values())  # type: ignore[operator]
    hosts_ok = up.get("hostname") == "controller" and "# openstack-aws begin" in (up.get("etc_hosts") or "")
    order = sorted([*((f"write {p}", ns) for p, ns in written.items()), *((f"unpack {k}", v) for k, v in
                                                                          installed.items())], key=lambda x: x[1])
    return Check("hostname and /etc/hosts before any package", ok and hosts_ok,
                 f"hostname {up.get('hostname')!r}; order (first boot): {[name for name, _ in order[:6]]}")


def check_facts(instance: Instance, up: Report, required: set[str]) -> Check:
    facts = env_file(up.get("node_env") or "") | env_file(up.get("cluster_env") or "")
    missing = sorted(name for name in required if not facts.get(name))
    by_index = {eni.device_number: eni for eni in instance.enis}
    expected = {
        "MGMT_IF": "mgmt0", "MGMT_MAC": by_index[0].mac, "MGMT_IP": by_index[0].local_ipv4s[0],
        "PROVIDER_IF": "prov0", "PROVIDER_MAC": by_index[1].mac, "PROVIDER_ENI_IP": by_index[1].local_ipv4s[0],
        "FLOATING_IPS": " ".join(by_index[1].local_ipv4s[1:]),
        "PUBLIC_IF": "pub0", "PUBLIC_MAC": by_index[2].mac, "PUBLIC_IP": by_index[2].local_ipv4s[0],
        "ROLE": "controller", "NODE_NAME": "controller",
    }
    wrong = {k: (facts.get(k), v) for k, v in expected.items() if facts.get(k) != v}
    return Check("node.env/cluster.env hold what the steps need", not missing and not wrong,
                 f"{len(required)} required by the controller's steps; missing {missing}; wrong {wrong}")


def check_policy_routing(instance: Instance, up: Report, ping_ok: bool, counters: str) -> Check:
    public = next(e for e in instance.enis if e.device_number == 2)
    address, gateway = public.local_ipv4s[0], seed.gateway(public.subnet_cidr)
    rule = any(r.get("src") == address and str(r.get("table")) == "200" for r in up.get("rules") or [])
    route = any(r.get("dst") == "default" and r.get("gateway") == gateway and r.get("dev") == "pub0"
                for r in up.get("table_200") or [])
    return Check("replies from pub0's address leave by pub0", rule and route and ping_ok,
                 f"rule from {address} table 200: {rule}; table 200 default via {gateway} dev pub0: {route}; "
                 f"ping from outside: {ping_ok}; VPC source check counters: {_counter_lines(counters)}")


def check_cloud_init_network(ups: dict[str, Report]) -> Check:
    bad = {}
    for boot, up in ups.items():
        problems = []
        if "disabled" not in (up.get("cloud_init_network_cfg") or ""):
            problems.append("99-custom-networking.cfg missing")
        if up.get("netplan_files"):
            problems.append(f"/etc/netplan holds {up['netplan_files']}")
        if any("netplan" in f for f in up.get("run_networkd_files") or []):
            problems.append(f"netplan rendered {up['run_networkd_files']}")
        states = {line.split()[1]: line.split()[3:] for line in (up.get("networkctl") or "").splitlines()
                  if len(line.split()) >= 5}
        if not all(states.get(name, [""])[-1] == "configured" for name in ("mgmt0", "prov0", "pub0")):
            problems.append(f"networkd states {states}")
        if problems:
            bad[boot] = problems
    return Check("cloud-init networking off, networkd owns the links", not bad and bool(ups), f"problems: {bad}")


def check_one_reboot(ended: dict[str, str], reports: list[Report]) -> Check:
    runs = {r["userdata_runs"] for r in reports}
    ok = ended.get("boot1") == "reboot" and all(v == "poweroff" for k, v in ended.items() if k != "boot1") \
        and runs == {1}
    return Check("exactly one reboot; userdata ran once", ok, f"boots ended by {ended}; userdata runs seen {runs}")


def check_unchanged(downs: dict[str, Report]) -> Check:
    hashes = {boot: r["hashes"] for boot, r in downs.items()}
    first = next(iter(hashes.values()), {})
    changed = {boot: sorted(p for p in h if h[p] != first.get(p)) for boot, h in hashes.items()}
    changed = {boot: paths for boot, paths in changed.items() if paths}
    return Check("later boots change nothing", len(hashes) >= 3 and not changed,
                 f"hashed at each shutdown of {list(hashes)}; changed: {changed or 'nothing'}")


def check_agent(ups: dict[str, Report]) -> Check:
    active = {boot: (up.get("agent_enabled"), up.get("agent_active")) for boot, up in ups.items()}
    ok = all(v == ("enabled", "active") for v in active.values()) and bool(active)
    return Check("SSM agent (stand-in) enabled and running after the reboot", ok, f"{active}")


def check_agent_not_before_reboot(reports: list[Report], boot1_id: str) -> Check:
    """A ping before the reboot lets the install send steps into the prefetch and the reboot (issue 12, #8)."""
    starts = {line for r in reports for line in r.get("agent_starts") or []}
    early = sorted(line for line in starts if boot1_id and f"boot={boot1_id}" in line)
    return Check("SSM agent never ran before the reboot", bool(boot1_id) and not early,
                 f"agent starts in the first boot: {early or 'none'}; all starts: {sorted(starts)}")


def _counter_lines(nft: str) -> list[str]:
    return [" ".join(line.split()) for line in nft.splitlines() if "counter packets" in line and "packets 0 " not in
            line]

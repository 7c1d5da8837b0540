"""Instances directly on the provider network (issue 11, item 7): what the neutron steps, network-fix and
launch-instance say, checked on their own text with the real library (crudini from .venv, as `make setup` installs
it) and stand-ins for systemd. The data path itself is proven in namespaces by test_provider_backhaul.py and
test_provider_bridge_translation.py."""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import subprocess
from pathlib import Path

import pytest

from stacks.config import AWS_RESERVED_HOST_NUMBERS, PROVIDER_DHCP_HOST_NUMBER, load_config
from tests.conftest import ROOT
from tests.step_text import written_file

STEPS = ROOT / "steps"
LIB = STEPS / "lib"
NEUTRON = LIB / "optional" / "neutron.sh"
NETWORK_FIX = STEPS / "95-network-fix.sh"
LAUNCH = STEPS / "99-launch-instance.sh"
VENV_BIN = ROOT / ".venv" / "bin"
AGENT_INI = "/etc/neutron/plugins/ml2/linuxbridge_agent.ini"


def _bash(script: str, tmp: Path, env: dict[str, str] | None = None, netns: str = "") -> subprocess.CompletedProcess[str]:
    """The script after the library (a checkout's: every optional part) with a controller's facts, in `netns`."""
    prologue = (
        f'set -euo pipefail\n. "{LIB}/common.sh"\nOSA_RUN="{tmp}"; OSA_STEP=test; OSA_T0=$SECONDS\n'
        "MGMT_IP=10.99.0.1 PROVIDER_IF=prov0\n"
    )
    full_env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **(env or {})}
    where = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*where, "bash", "-c", prologue + script], capture_output=True, text=True, env=full_env)


def _line(path: Path, pattern: str) -> int:
    """The number of the step's first line matching `pattern` (a regex)."""
    lines = path.read_text().splitlines()
    found = [n for n, line in enumerate(lines, 1) if re.search(pattern, line)]
    assert found, f"{path.name}: no line matches {pattern!r}"
    return found[0]


# ------------------------------------------------------------------------------------------------ the DHCP port
def _dhcp_ip(provider_cidr: str) -> str:
    """The DHCP port's address as network-fix computes it."""
    (line,) = [line for line in NETWORK_FIX.read_text().splitlines() if line.startswith("dhcp_ip=")]
    proc = subprocess.run(["bash", "-c", f"PROVIDER_CIDR={provider_cidr}\n{line}\necho $dhcp_ip"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return proc.stdout.strip()


@pytest.mark.parametrize(
    ("vpc", "subnet_a", "subnet_b"),
    [("172.31.0.0/16", "172.31.32.0/24", "172.31.33.0/24"), ("10.20.0.0/16", "10.20.0.0/18", "10.20.64.0/18"),
     ("192.168.7.0/24", "192.168.7.128/26", "192.168.7.192/26")],
)  # fmt: skip
def test_the_dhcp_port_takes_an_address_aws_reserves_which_no_planned_address_can_be(
    vpc: str, subnet_a: str, subnet_b: str
) -> None:
    """An ENI can never hold it (AWS gives out none of a subnet's first four), and the plan's addresses in subnet B
    (router, computes' provider ENIs, controller eth2, the largest pool, the NAT gateway, the VPC router) are others."""
    network = ipaddress.ip_network(subnet_b)
    config = load_config({"vpc_cidr": vpc, "subnet_a_cidr": subnet_a, "subnet_b_cidr": subnet_b,
                          "compute_count": 10, "floating_ips": 8, "eip_quota": 20})  # fmt: skip
    dhcp = _dhcp_ip(subnet_b)
    assert dhcp == config.provider_dhcp_ip == str(network.network_address + 3)
    assert PROVIDER_DHCP_HOST_NUMBER in AWS_RESERVED_HOST_NUMBERS
    planned = {config.provider_eni_ip(node) for node in ["controller", *config.node_names("compute")]}
    planned |= {config.public_ip, config.nat_gateway_ip, config.gateway(network), *config.floating_ip_addresses}
    assert len(planned) == 1 + 10 + 3 + 8 and dhcp not in planned
    assert all(ipaddress.ip_address(a) in network for a in planned)


def test_the_dhcp_port_is_made_before_dhcp_is_on_and_dns_is_the_vpc_resolver() -> None:
    """The agent adopts the port only if it exists when the subnet gets DHCP; otherwise it takes a pool address."""
    text = NETWORK_FIX.read_text()
    assert re.search(r"os_ensure provider-subnet subnet .*\n\s+--no-dhcp", text), "created without DHCP"
    create = _line(NETWORK_FIX, r"openstack port create --network provider --device-owner network:dhcp "
                                r"--device reserved_dhcp_port")  # fmt: skip
    assert _line(NETWORK_FIX, r'fixed-ip "subnet=provider-subnet,ip-address=\$dhcp_ip" provider-dhcp') == create + 1
    assert create < _line(NETWORK_FIX, r"openstack subnet set --dhcp --no-dns-nameservers "
                                       r'--dns-nameserver "\$VPC_DNS" provider-subnet')  # fmt: skip


# ------------------------------------------------------------------------------------------- the agents' mapping
@pytest.mark.parametrize(
    ("kind", "target", "gone"),
    [("bridge_mappings", "br-provider", "physical_interface_mappings"),
     ("physical_interface_mappings", "osa-provider", "bridge_mappings")],
)  # fmt: skip
def test_the_agents_mapping_replaces_an_earlier_releases(tmp_path: Path, kind: str, target: str, gone: str) -> None:
    ini = tmp_path / "linuxbridge_agent.ini"
    ini.write_text("[linux_bridge]\nphysical_interface_mappings = provider:prov0\nbridge_mappings = provider:brx\n")
    lib = tmp_path / "neutron.sh"
    lib.write_text(NEUTRON.read_text().replace(AGENT_INI, str(ini)))
    run = f'chown() {{ :; }}\n. "{lib}"\nlinuxbridge_conf {kind} {target}\n_osa_changes'
    first = _bash(run, tmp_path)
    assert first.returncode == 0, first.stderr
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ini)
    assert parser["linux_bridge"][kind] == f"provider:{target}" and gone not in parser["linux_bridge"]
    assert parser["vxlan"]["local_ip"] == "10.99.0.1"
    assert _bash(run, tmp_path).stdout.splitlines()[-1] == "nothing changed"


def test_the_controller_maps_the_provider_bridge_and_the_computes_the_backhaul() -> None:
    """Both before the agent's svc_apply, so it (re)starts with the mapping and the devices in place."""
    controller, compute = STEPS / "60-neutron-controller.sh", STEPS / "61-neutron-compute.sh"
    agent = r'^svc_apply .* "\$agent"$'
    assert _line(controller, r'linuxbridge_conf bridge_mappings "\$PROVIDER_BRIDGE"; else$') < _line(controller, agent)
    assert _line(controller, r'^    ovs_agent_conf "\$dp"$') < _line(controller, agent)
    assert _line(controller, r'^provider_backhaul "\$PROVIDER_BRIDGE" \$\{ovs:\+"\$ovs"\}$') < _line(controller, agent)
    assert _line(compute, r'^    linuxbridge_conf physical_interface_mappings "\$PROVIDER_BACKHAUL"$') < _line(compute, agent)
    assert _line(compute, r"^    provider_backhaul$") < _line(compute, agent)
    assert _line(compute, r'^    provider_backhaul "" "\$OVS_PROVIDER_BRIDGE"$') < _line(compute, agent)
    assert "PROVIDER_BRIDGE=br-provider" in (LIB / "openstack.sh").read_text().splitlines()
    assert "PROVIDER_BACKHAUL=osa-provider" in NEUTRON.read_text().splitlines()


# --------------------------------------------------------------------------------------------- the backhaul unit
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a network namespace with bridges and VXLAN")
def test_provider_backhaul_writes_its_unit_stops_an_agent_holding_the_interface_and_converges(tmp_path: Path) -> None:
    """The function as neutron-controller calls it, in a namespace (systemd stands in): the unit runs the script with
    the backhaul and the bridge before the agent at every boot; an agent that still has PROVIDER_IF in its old
    bridge is stopped first (it would take it back); the second run changes nothing."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "node.env").write_text("MGMT_IP=10.99.0.1\nPROVIDER_IF=prov0\n")
    (etc / "cluster.env").write_text('CONTROLLER_IP=10.99.0.1\nCOMPUTE_IPS="10.99.0.2"\n')
    script, unit = tmp_path / "backhaul", tmp_path / "backhaul.service"
    lib = tmp_path / "neutron.sh"
    lib.write_text(NEUTRON.read_text().replace("/usr/local/sbin/openstack-aws-provider-backhaul", str(script))
                   .replace("/etc/systemd/system/openstack-aws-provider-backhaul.service", str(unit)))  # fmt: skip
    calls = tmp_path / "calls"
    # OSA_ETC: the library's name for the facts' folder, which the script reads too (exported, so it sees this one)
    stubs = (f'systemctl() {{ echo "systemctl $*" >>"{calls}"; }}\nsvc_apply() {{ echo "svc_apply $*" >>"{calls}"; }}\n'
             f'. "{lib}"\nexport OSA_ETC="{etc}" PROVIDER_BRIDGE=br-test\nprovider_backhaul "$PROVIDER_BRIDGE"\n'
             "_osa_changes")  # fmt: skip
    ns = f"osa-unit-{os.getpid()}"
    setup = (f"ip netns add {ns}\nip -n {ns} link add prov0 type veth peer name prov0-peer\n"
             f"ip -n {ns} link add brqold type bridge\nip -n {ns} link set prov0 master brqold\n")  # fmt: skip
    try:
        subprocess.run(["bash", "-c", setup], check=True)
        first = _bash(stubs, tmp_path, netns=ns)
        assert first.returncode == 0, first.stderr
        assert calls.read_text().splitlines() == [
            "systemctl daemon-reload",
            "systemctl is-active -q neutron-linuxbridge-agent",
            "systemctl stop neutron-linuxbridge-agent",
            f"svc_apply {script} {unit} openstack-aws-provider-backhaul",
        ]
        changes = first.stdout.splitlines()[-1]
        assert "stopped:neutron-linuxbridge-agent" in changes and "provider-backhaul" in changes
        assert "provider backhaul: " in first.stdout and "br-test: took brqold's ports" in first.stdout
        text = unit.read_text()
        assert "Before=neutron-linuxbridge-agent.service neutron-openvswitch-agent.service" in text
        assert "WantedBy=multi-user.target" in text
        assert f"ExecStart={script} osa-provider br-test" in text.splitlines()
        assert "Type=oneshot" in text and "RemainAfterExit=yes" in text
        calls.unlink()
        again = _bash(stubs, tmp_path, netns=ns)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[-1] == "nothing changed"
        assert calls.read_text().splitlines() == [f"svc_apply {script} {unit} openstack-aws-provider-backhaul"]
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


# ----------------------------------------------------------------------------------------------- network-fix
def test_the_owner_map_reads_the_provider_networks_hosts_file_for_the_pool_only(tmp_path: Path) -> None:
    """Not the router's own address (PROVIDER_ENI_IP) nor the DHCP port's: the ENI's secondary addresses only."""
    text = NETWORK_FIX.read_text()
    body = re.search(r"write_file /etc/systemd/system/openstack-aws-provider-owners.service 0644 <<EOF2\n(.*?)\nEOF2",
                     text, re.S)  # fmt: skip
    assert body
    facts = "provider_net=0123-net FLOATING_IPS='172.31.33.50 172.31.33.51' PROVIDER_ENI_IP=172.31.33.12\n"
    rendered = subprocess.run(["bash", "-c", f"{facts}cat <<EOF2\n{body.group(1)}\nEOF2"], capture_output=True,
                              text=True, check=True).stdout  # fmt: skip
    assert ("ExecStart=/usr/local/sbin/openstack-aws-provider-owners /var/lib/neutron/dhcp/0123-net/host "
            "172.31.33.50 172.31.33.51") in rendered.splitlines()  # fmt: skip


def test_network_fix_names_the_provider_bridge_not_the_agents_brq() -> None:
    text = NETWORK_FIX.read_text()
    brq = [line.strip() for line in text.splitlines() if "brq" in line and not line.lstrip().startswith("#")]
    assert brq == ['while iptables -t raw -D PREROUTING -i "brq${provider_net:0:11}" -j CT --notrack 2>/dev/null; do',
                   "mark_changed iptables:notrack:brq"], "only the removal of an earlier install's rule names brq…"
    assert "iptables -t raw -C PREROUTING -i $PROVIDER_BRIDGE -j CT --notrack" in text
    assert _line(NETWORK_FIX, r'^\[\[ -d "/sys/class/net/\$PROVIDER_BRIDGE/bridge" \]\] \|\|$') < _line(
        NETWORK_FIX, r"^write_file /usr/local/sbin/openstack-aws-netfix ")


# ------------------------------------------------------------------------------------------- launch-instance
def test_launch_instance_runs_the_provider_instance_after_the_users_walkthrough_is_gone() -> None:
    """Pool arithmetic: verify's floating IP holds one address; demo's router and floating IP (2) are released
    before the provider instance takes one, so floating_ips=3 fits both. What a killed run left goes first."""
    leftovers = _line(LAUNCH, r"^for name in verify-user verify-provider; do$")
    assert _line(LAUNCH, r'^    demo_down "\$name" \|\|') == leftovers + 1
    user_down = _line(LAUNCH, r"^demo_down verify-user \|\|")
    assert leftovers < _line(LAUNCH, r"^free=\$\(pool_free\)$") < user_down
    provider = _line(LAUNCH, r"^elif ! addr=\$\(provider_walkthrough\)")
    assert user_down < _line(LAUNCH, r"^elif \(\(\$\(pool_free\) == 0\)\); then$") < provider
    assert provider < _line(LAUNCH, r"^demo_down verify-provider \|\|")
    text = LAUNCH.read_text()
    for name in ("provider-instance-address", "provider-instance-dhcp", "provider-instance-to-internet"):
        assert name in text
    assert "pool is used up" in text


@pytest.mark.parametrize(
    ("source", "target"),
    [(NEUTRON, "/usr/local/sbin/openstack-aws-provider-backhaul"),
     (NETWORK_FIX, "/usr/local/sbin/openstack-aws-provider-owners")],
)  # fmt: skip
def test_the_scripts_the_steps_write_are_shellcheck_clean(tmp_path: Path, source: Path, target: str) -> None:
    """make lint checks the steps' files, not the scripts they write from a quoted heredoc."""
    script = tmp_path / Path(target).name
    script.write_text(written_file(source, target))
    result = subprocess.run(["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout

"""The openstack CLI as a remote operator runs it (README, "From your machine"): Debian's python3-openstackclient in
the rig's internet namespace, the README's environment (public interface, https on the Elastic IP, OS_CACERT the
cloud's CA from the artifact store), and the commands an operator types first. Each must answer through the public
endpoints; the check fails on the first that does not, with what the CLI printed."""

from __future__ import annotations

import os
import time

from . import config, nodes
from .sh import run

#: (what it shows, the command): every public API the catalog names, and the console URL a user opens.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("catalog", ("catalog", "list", "-f", "value", "-c", "Name")),
    ("servers", ("server", "list", "--all-projects", "-f", "value", "-c", "ID", "-c", "Name")),
    ("images", ("image", "list", "-f", "value", "-c", "Name")),
    ("networks", ("network", "list", "-f", "value", "-c", "Name")),
    ("hypervisors", ("hypervisor", "list", "-f", "value", "-c", "Hypervisor Hostname")),
    ("resource classes", ("resource", "class", "list", "-f", "value", "-c", "name")),
    ("volume services", ("volume", "service", "list", "-f", "value", "-c", "Binary")),
    ("object store containers", ("object", "store", "account", "show", "-f", "value", "-c", "Containers")),
    # verify's instance is demo's: admin names it by the ID the server list showed
    ("console", ("console", "url", "show", "-f", "value", "-c", "url", "{verify-instance}")),
)


def operator_env() -> dict[str, str]:
    """The README's `export OS_...` line for admin, with the rig's Elastic IP and CA."""
    return {"OS_AUTH_URL": f"https://{config.ELASTIC_IP}:5000/v3", "OS_CACERT": str(config.PUBLIC_TLS_CA),
            "OS_INTERFACE": "public", "OS_REGION_NAME": "RegionOne", "OS_IDENTITY_API_VERSION": "3",
            "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "OS_USERNAME": "admin",
            "OS_PROJECT_NAME": "admin", "OS_PASSWORD": nodes.rig_secrets()["ADMIN_PASS"]}  # fmt: skip


def openstack_cli_from_outside() -> tuple[bool, str]:
    """Whether every command answered, and what each showed (or the first failure)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env = {**base, **operator_env()}
    seen: list[str] = []
    ids: dict[str, str] = {}
    for what, template in COMMANDS:
        args = tuple(ids.get(a[1:-1], a) if a.startswith("{") else a for a in template)
        t0 = time.monotonic()
        proc = run(["ip", "netns", "exec", config.NS_INTERNET, "openstack", *args], check=False, env=env,
                   timeout=180, quiet=True)  # fmt: skip
        lines = proc.stdout.splitlines()
        if what == "servers":
            ids = {name: sid for sid, _, name in (line.partition(" ") for line in lines)}
        if proc.returncode != 0 or not lines:
            detail = (
                f"{config.NS_INTERNET}: openstack {' '.join(args)} -> rc {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-300:]!r}; before it: {', '.join(seen) or 'nothing'}"
            )
            return False, detail
        shown = lines[0] if what == "console" else f"{len(lines)}"
        if what == "console" and not shown.startswith(f"https://{config.ELASTIC_IP}:6080/"):
            return False, f"console URL {shown} is not noVNC on https://{config.ELASTIC_IP}:6080/"
        seen.append(f"{what} {shown} ({time.monotonic() - t0:.1f}s)")
    detail = f"{config.NS_INTERNET}, OS_INTERFACE=public on https://{config.ELASTIC_IP}: " + ", ".join(seen)
    return True, detail

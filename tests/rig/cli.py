"""The rig's command line: python3 -m tests.rig.cli {up,run,down,status,...} (from the repository root, as root)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import config, host, nodes, state, teardown, testimage, vpc
from .sh import RigError, log, pid_alive


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def up() -> dict[str, float]:
    """Build and boot everything that is not running yet; return timings."""
    times: dict[str, float] = {}
    nodes.claim_topology()
    t0 = time.monotonic()
    host.ensure_host()
    times["host"] = time.monotonic() - t0
    t = time.monotonic()
    nodes.ensure_base()
    times["base_image"] = time.monotonic() - t
    t = time.monotonic()
    testimage.ensure()
    times["test_image"] = time.monotonic() - t
    t = time.monotonic()
    vpc.ensure_network()
    times["vpc"] = time.monotonic() - t
    t = time.monotonic()
    launched = {spec.name for spec in config.NODES if nodes.launch(spec)}
    times["rootfs_and_launch"] = time.monotonic() - t
    t = time.monotonic()
    errors: list[str] = []
    ready: dict[str, float] = {}

    def wait(spec: config.NodeSpec) -> None:
        # A new node is ready once cloud-init ran its userdata and rebooted it and its SSM agent pings.
        try:
            if spec.name in launched:
                ready[spec.name] = nodes.wait_agent(spec)
            nodes.wait_booted(spec)
        except RigError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=wait, args=(spec,)) for spec in config.NODES]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise RigError("; ".join(errors))
    times["boot"] = time.monotonic() - t
    if ready:
        log("agent online (boot, userdata, reboot) after: " + ", ".join(f"{n} {v:.0f}s" for n, v in ready.items()))
    log("nodes up: " + ", ".join(f"{s.name} (pid {nodes.leader(s)}, {s.mgmt_ip})" for s in config.NODES)
        + " | " + ", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
    return times


def status() -> int:
    data = state.load()
    print(f"state file: {config.STATE}")
    for spec in nodes.known_specs():
        launcher = nodes.launcher_pid(spec)
        lead = nodes.leader(spec)
        sysstate = ""
        if lead:
            sysstate = nodes.node_run(spec, ["systemctl", "is-system-running"]).stdout.strip()
        print(f"  {spec.name:11} {spec.mgmt_ip:13} launcher={launcher or '-'} leader={lead or '-'} {sysstate}")
    for name, pid in data["pids"].items():
        if not name.startswith("node:"):
            print(f"  {name:11} pid {pid} {'running' if pid_alive(pid) else 'gone'}")
    print(f"  bridges {data['bridges']}  netns {data['netns']}  nft {data['nft']}")
    print(f"  loops {data['loops']}")
    print(f"  base image: {'ready' if config.BASE_MARKER.exists() else 'not built'}; "
          f"test image: {config.TEST_IMAGE if config.TEST_IMAGE.exists() else 'not built'}")
    for eni in vpc.load_eni_table():
        print(f"  {eni['eni_id']} {eni['node']}:{eni['device_index']} {eni['mac']} {','.join(eni['addresses'])} "
              f"srcdst={'on' if eni['source_dest_check'] else 'off'} "
              f"eip={','.join(f'{priv}={pub}' for pub, priv in vpc.elastic_ip_pairs([eni])) or '-'}")
    return 0


def _spec(node_name: str) -> config.NodeSpec:
    """Any rig node, also one of another COMPUTE_COUNT than this shell's (a kept rig of `COMPUTE_COUNT=3 make rig`)."""
    spec = config.any_node(node_name)
    if spec is None:
        raise RigError(f"no rig node {node_name!r}; nodes: {', '.join(s.name for s in nodes.known_specs())}")
    return spec


def _exec(node_name: str, argv: list[str]) -> int:
    spec = _spec(node_name)
    if argv and argv[0] == "--":
        argv = argv[1:]
    cmd = nodes.node_cmd(spec, argv or ["bash", "-l"])
    return subprocess.call(cmd)


def _reboot(node_name: str) -> int:
    nodes.reboot(_spec(node_name))
    return 0


_LOCKED = ("up", "run", "down", "reboot", "build-image")


def _lock(command: str) -> object:
    """One rig-changing command at a time (a `down` during someone's `run` wrecks both)."""
    import fcntl

    config.BUILD.mkdir(parents=True, exist_ok=True)
    handle = open(config.BUILD / "rig.lock", "a+")  # noqa: SIM115 (held until the process exits)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise RigError(f"the rig is busy: {handle.read().strip() or 'another command'}; wait for it or stop it "
                       "first (`status` shows the nodes)") from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} running `{command}` since {time.strftime('%H:%M:%S')}\n")
    handle.flush()
    return handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.rig.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build and boot the nodes (reuses running ones)")
    p_run = sub.add_parser("run", help="boot if needed, run the steps, write build/rig/report.json")
    p_run.add_argument("--steps", default=os.environ.get("RIG_STEPS", ""), help="comma list of steps (only these)")
    p_run.add_argument("--from-step", default=os.environ.get("RIG_FROM_STEP", ""), help="resume from this step")
    p_run.add_argument("--keep", action="store_true", default=os.environ.get("RIG_KEEP", "") == "1",
                       help="leave the nodes up afterwards")
    p_run.add_argument("--steps-dir", type=Path, default=None, help="another steps/ folder (tests of the rig)")
    sub.add_parser("down", help="remove everything the rig made (also after a crash)")
    sub.add_parser("status", help="what is running")
    p_eni = sub.add_parser("eni-set-source-dest-check", help="the rig's EC2 ModifyNetworkInterfaceAttribute")
    p_eni.add_argument("eni", help="eni-... or node:device_index, e.g. controller:2")
    p_eni.add_argument("value", choices=["true", "false"])
    sub.add_parser("eni-show", help="print the ENI table (JSON)")
    p_exec = sub.add_parser("exec", help="run a command on a node (default: a shell)")
    p_exec.add_argument("node")
    p_exec.add_argument("argv", nargs=argparse.REMAINDER)
    p_reboot = sub.add_parser("reboot", help="reboot a node from inside; it boots again")
    p_reboot.add_argument("node")
    sub.add_parser("build-image", help="(re)build the test image only")
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        print("the rig needs root", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        held = _lock(args.command) if args.command in _LOCKED else None  # noqa: F841 (kept open)
        if args.command in ("up", "run"):
            nodes.check_topology()  # before the paths that tear down on a failure: a refusal must leave the rig be
        if args.command == "up":
            try:
                up()
            except BaseException:
                log(f"up failed: tearing down what was made (state in {config.SHOWN_BUILD}/state.json)")
                teardown.down()
                raise
            return 0
        if args.command == "run":
            from . import runner

            return runner.run_command(args.steps, args.from_step, args.keep, args.steps_dir, up)
        if args.command == "down":
            teardown.down()
            return 0
        if args.command == "status":
            return status()
        if args.command == "eni-set-source-dest-check":
            eni = vpc.set_source_dest_check(args.eni, args.value == "true")
            print(json.dumps(eni))
            return 0
        if args.command == "eni-show":
            print(json.dumps({"network_interfaces": vpc.load_eni_table()}, indent=1))
            return 0
        if args.command == "exec":
            return _exec(args.node, args.argv)
        if args.command == "reboot":
            return _reboot(args.node)
        if args.command == "build-image":
            testimage.ensure(force=True)
            return 0
    except RigError as exc:
        print(f"rig: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rig: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())

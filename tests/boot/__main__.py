import argparse

from tests.boot.proof import run_proof

parser = argparse.ArgumentParser(prog="python3 -m tests.boot", description="the QEMU (TCG) boot proof of the userdata")
parser.add_argument("--rebuild-image", action="store_true", help="rebuild build/boot/image even if cached")
raise SystemExit(run_proof(parser.parse_args().rebuild_image))

#!/usr/bin/env python3
"""CDK entry: load the configuration, build the stacks, run cdk-nag (AwsSolutions) on every synth."""

from __future__ import annotations

import os
import sys

import aws_cdk as cdk

from stacks.app_builder import build_app
from stacks.config import ConfigError
from stacks.deployed_identity import record


def main() -> None:
    app = cdk.App()
    try:
        stacks = build_app(app)
    except ConfigError as error:
        # One line naming key, value and accepted form; no traceback for a typo.
        print(f"configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    app.synth()
    if os.environ.get("OPENSTACK_AWS_RECORD_IDENTITY") == "1":  # set by `make deploy` only
        record(stacks.config)


if __name__ == "__main__":
    main()

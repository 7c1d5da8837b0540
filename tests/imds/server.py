"""IMDSv2 as EC2 serves it to an instance with HttpTokens=required.

PUT /latest/api/token (TTL header 1-21600) returns a token; every GET needs a live token, else 401. Any version
prefix (/latest, /2021-03-23, ...) answers the same tree, as cloud-init asks for dated versions. A directory lists
its keys, sub-directories with a trailing slash; a list value is its items, one a line.

One server can stand in for many instances (the rig's nodes share 169.254.169.254): `trees` maps a client's source
address to its instance's tree, as EC2 answers each instance from the ENI the request arrived on. A token is valid
only for the client it was issued to.
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


class Imds:
    def __init__(self, trees: dict[str, dict[str, Any]]) -> None:
        self.trees = trees
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, int]] = []

    def tree_for(self, client: str) -> dict[str, Any] | None:
        return self.trees.get(client, self.trees.get("*"))

    def issue(self, client: str, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (client, time.monotonic() + ttl)
        return token

    def valid(self, client: str, token: str | None) -> bool:
        with self._lock:
            owner, expiry = self._tokens.get(token or "", ("", 0.0))
        return owner == client and expiry > time.monotonic()

    def lookup(self, client: str, path: str) -> tuple[int, str]:
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2:
            return (200, "latest\n") if not parts else (404, "")
        node: Any = self.tree_for(client)
        for part in parts[1:]:
            if not isinstance(node, dict) or part not in node:
                return 404, ""
            node = node[part]
        if isinstance(node, dict):
            return 200, "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items())
        if isinstance(node, list):
            return 200, "\n".join(node)
        return 200, str(node)


def handler_for(imds: Imds) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            imds.requests.append((self.command, self.path, status))

        def do_PUT(self) -> None:
            if imds.tree_for(self.client_address[0]) is None:
                return self._answer(403, "")
            if self.path.rstrip("/") != "/latest/api/token":
                return self._answer(404, "")
            try:
                ttl = int(self.headers.get(TTL_HEADER, ""))
            except ValueError:
                return self._answer(400, "")
            if not 1 <= ttl <= 21600:
                return self._answer(400, "")
            return self._answer(200, imds.issue(self.client_address[0], ttl))

        def do_GET(self) -> None:
            client = self.client_address[0]
            if not imds.valid(client, self.headers.get(TOKEN_HEADER)):
                return self._answer(401, "")
            return self._answer(*imds.lookup(client, self.path.split("?")[0]))

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

    return Handler


def serve(trees: dict[str, dict[str, Any]], host: str, port: int) -> ThreadingHTTPServer:
    """`trees`: client address -> that instance's tree ("*" answers any other client)."""
    server = ThreadingHTTPServer((host, port), handler_for(Imds(trees)))
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True,
                        help='JSON file: {"<client address or *>": <tree under /<version>/, see metadata.document>}')
    parser.add_argument("--bind", default="169.254.169.254")
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args()
    with open(args.data) as f:
        trees = json.load(f)
    serve(trees, args.bind, args.port).serve_forever()


if __name__ == "__main__":
    main()

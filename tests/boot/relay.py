"""A byte relay between a TCP or Unix listener and a TCP or Unix target.

The boot proof's network namespace has no route to the host: the guest's apt reaches the host's cache through
two of these, joined by a Unix socket (a file both namespaces see): in the namespace `tcp:172.31.32.2:3142 ->
unix:SOCK`, on the host `unix:SOCK -> tcp:127.0.0.1:3142`. No packet is routed between them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import threading


def _address(spec: str) -> tuple[int, object]:
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        return socket.AF_UNIX, rest
    host, _, port = rest.rpartition(":")
    return socket.AF_INET, (host, int(port))


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _serve_one(client: socket.socket, target: str) -> None:
    family, address = _address(target)
    upstream = socket.socket(family, socket.SOCK_STREAM)
    try:
        upstream.connect(address)
    except OSError:
        client.close()
        return
    threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
    _pump(client, upstream)


def relay(listen: str, target: str) -> None:
    family, address = _address(listen)
    server = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_UNIX:
        if os.path.exists(str(address)):
            os.unlink(str(address))
    else:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(address)
    server.listen(64)
    while True:
        client, _ = server.accept()
        threading.Thread(target=_serve_one, args=(client, target), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("listen", help="tcp:HOST:PORT or unix:PATH")
    parser.add_argument("target", help="tcp:HOST:PORT or unix:PATH")
    args = parser.parse_args()
    relay(args.listen, args.target)


if __name__ == "__main__":
    main()

"""robyn-ws-server: runs Python WebSocket apps written against Robyn's decorator API on a Rust
server, inside this Python. ``robyn-ws-server --app pyapp.main`` (or ``python -m
robyn_ws_server``) serves the app; ``robyn-ws-server --help`` lists the flags.

The ``robyn`` package the app imports is the server's own, served from inside this package
(never installed as a top-level ``robyn``, which the real Robyn owns)."""

from __future__ import annotations

import sys

__all__ = ["main", "serve"]


def serve(flags: list[str]) -> int:
    """Runs the server with ``flags`` (a command line without the program's name) until it is
    stopped; returns its exit status."""
    from robyn_ws_server import _server

    return _server.serve(sys.executable, flags)


def main() -> None:
    """The ``robyn-ws-server`` command."""
    sys.exit(serve(sys.argv[1:]))

"""``python -m robyn_ws_server``: the ``robyn-ws-server`` command."""

from robyn_ws_server import main

main()

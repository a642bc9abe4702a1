"""Annotations as strings (`from __future__ import annotations`) resolve like real ones."""

from __future__ import annotations

from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/ws")
async def handler(websocket, page: int = 1, flag: bool | None = None, ids: list[int] | None = None):
    await websocket.send_text(f"{page!r} {flag!r} {ids!r}")
    await websocket.receive_text()

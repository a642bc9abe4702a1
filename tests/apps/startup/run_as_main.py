"""Starts as Robyn apps do: routes registered under `if __name__ == "__main__":` (a router
included there, as Robyn's own test app does), `app.start()` there, and code after it that
runs once the server has stopped."""

import sys

from robyn import Robyn, SubRouter

app = Robyn(__file__)


@app.websocket("/always")
async def always(websocket):
    await websocket.send_text(f"name={__name__} argv={sys.argv}")


if __name__ == "__main__":
    late = SubRouter(__file__, prefix="/late")

    @late.websocket("/ws")
    async def late_ws(websocket):
        await websocket.send_text("registered under __main__")

    app.include_router(late)
    print("starting", flush=True)
    app.start(port=8080)
    print("after app.start: the server has stopped", flush=True)

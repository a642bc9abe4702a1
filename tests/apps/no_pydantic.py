"""An app without pydantic (tests/test_sessions_auth.py): importing it fails here, as where it
is not installed, and the app's typed bodies and routes are served all the same."""

import sys
from typing import TypedDict

sys.modules["pydantic"] = None  # type: ignore[assignment]  # `import pydantic` now raises ImportError

from robyn import Robyn  # noqa: E402
from robyn.types import JsonBody  # noqa: E402

app = Robyn(__file__)


class Point(TypedDict):
    x: int
    y: int


class Note(JsonBody):
    pass


@app.post("/point")
def point(body: Point) -> dict:
    return {"sum": body["x"] + body["y"]}


@app.post("/note")
async def note(body: Note) -> dict:
    return {"note": body, "pydantic": sys.modules.get("pydantic") is not None}


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(message)

"""An app whose OpenAPI document tests/test_openapi.py reads: typed easy-access and path
parameters, a TypedDict body and return, a docstring, per-route options, a SubRouter with tags,
and WebSocket routes (one beside an HTTP GET on the same path)."""

from __future__ import annotations

from typing import Optional, TypedDict

from robyn import Robyn, SubRouter
from robyn.openapi import OpenAPI, OpenAPIInfo

app = Robyn(__file__, openapi=OpenAPI(info=OpenAPIInfo(title="Shop", version="2.1.0")))
app.set_response_header("x-shop", "1")


class Item(TypedDict):
    name: str
    price: float


# Optional, not `X | None`: the annotation is read at run time, on Python 3.9 too.
@app.get("/items/:item_id", openapi_name="Read an item")
def read_item(item_id: int, verbose: bool = False, fields: Optional[list[str]] = None) -> Item:  # noqa: UP045
    """One item by its number."""
    return {"name": f"item {item_id}", "price": 1.5}


@app.post("/items", status_code=201, responses={409: "Already there"})
def create_item(item: Item) -> Item:
    return item


@app.get("/files/*path")
def download(path: str) -> bytes:
    return path.encode()


@app.get("/hidden", include_in_schema=False)
def hidden() -> str:
    return "not in the document"


shop = SubRouter("/shop", tags=["shop"])


@shop.get("/cart", openapi_tags=["cart"])
def cart() -> list[Item]:
    return []


app.include_router(shop)


@app.websocket("/chat/:room")
async def chat(websocket, room: str, nick: str = "guest"):
    """Chat with the others in a room."""
    async for message in websocket:
        await websocket.send_text(f"{room} {nick}: {message}")


@app.get("/feed")
def feed_page() -> str:
    return "the feed, for a browser"


@app.websocket("/feed", subprotocols=["feed.v1"])
async def feed(websocket):
    async for message in websocket:
        await websocket.send_text(message)


if __name__ == "__main__":
    app.start()

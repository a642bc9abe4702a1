"""A pydantic model as a handler's parameter: the JSON body validated into it
(tests/test_sessions_auth.py). pydantic is this app's own dependency."""

from pydantic import BaseModel, Field
from robyn import Robyn

app = Robyn(__file__)


class Item(BaseModel):
    name: str
    price: float = Field(gt=0)


@app.post("/items")
def create(item: Item) -> Item:
    return item


@app.post("/items/async")
async def create_async(item: Item) -> dict:
    return {"name": item.name, "total": item.price * 2}


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(message)

"""The app exists only inside a factory's closure: no module-level name refers to it."""

from robyn import Robyn


def build() -> None:
    app = Robyn(__file__)

    @app.websocket("/factory")
    async def handler(websocket):
        await websocket.send_text("from the factory")
        await websocket.receive_text()


build()

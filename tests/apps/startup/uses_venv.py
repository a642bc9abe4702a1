import venv_only_module
from robyn import Robyn

app = Robyn(__file__)


@app.websocket("/venv")
async def from_venv(websocket):
    await websocket.send_text(venv_only_module.WHERE)
    await websocket.receive_text()

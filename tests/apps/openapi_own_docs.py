"""An app with its own GET /docs (tests/test_openapi.py): it is served there, and the server's
/openapi.json still is."""

from robyn import Robyn

app = Robyn(__file__)


@app.get("/docs")
def docs() -> str:
    return "our own docs"


@app.get("/ping")
def ping() -> str:
    return "pong"

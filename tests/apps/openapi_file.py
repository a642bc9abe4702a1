"""An app serving a spec file of its own (openapi_file_path, relative to this file)."""

from robyn import Robyn

app = Robyn(__file__, openapi_file_path="openapi_files/spec.json")


@app.get("/ping")
def ping() -> str:
    return "pong"

"""OpenAPI as an app serves it, through the real binary and a real HTTP client: the document at
/openapi.json built from the routes (tests/apps/openapi_app.py), its WebSocket routes, the
Swagger UI page at /docs, a spec file of the app's own (openapi_file_path), an app's own /docs
route, and a spec file that is not there."""

from __future__ import annotations

import json
from typing import Any

import requests
from conftest import APPS, TIMEOUT, receive, run_to_exit


def get(port: int, path: str) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT)


def document(port: int) -> dict[str, Any]:
    reply = get(port, "/openapi.json")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    found: dict[str, Any] = reply.json()
    return found


def test_the_document_describes_each_route_from_its_signature_and_docstring(start_server):
    spec = document(start_server("openapi_app").port)
    assert spec["openapi"] == "3.1.0"
    assert spec["info"] == {"title": "Shop", "version": "2.1.0"}

    read = spec["paths"]["/items/{item_id}"]["get"]
    assert read["summary"] == "Read an item"
    assert read["description"] == "One item by its number."
    assert read["tags"] == ["get"]
    assert read["parameters"] == [
        {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "verbose", "in": "query", "required": False, "schema": {"type": "boolean", "default": False}},
        {"name": "fields", "in": "query", "required": False, "schema": {"type": "array", "items": {"type": "string"}}},
    ]
    item = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
        "required": ["name", "price"],
    }
    assert read["responses"]["200"]["content"]["application/json"]["schema"] == item

    create = spec["paths"]["/items"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == item
    assert set(create["responses"]) == {"201", "409"}
    assert create["responses"]["409"] == {"description": "Already there"}

    download = spec["paths"]["/files/{path}"]["get"]
    assert download["parameters"][0]["description"] == "the rest of the path, slashes included"
    assert download["responses"]["200"]["content"] == {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
    }

    # A SubRouter's tags come first; include_in_schema=False and the docs' own routes are left out.
    assert spec["paths"]["/shop/cart"]["get"]["tags"] == ["shop", "cart"]
    assert spec["paths"]["/shop/cart"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": item,
    }
    assert not {"/hidden", "/openapi.json", "/docs"} & set(spec["paths"])


async def test_websocket_routes_are_get_operations_answered_101(start_server):
    server = start_server("openapi_app")
    spec = document(server.port)
    chat = spec["paths"]["/chat/{room}"]["get"]
    assert chat["tags"] == ["websocket"]
    assert chat["description"] == "Chat with the others in a room."
    assert chat["parameters"] == [
        {"name": "room", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "nick", "in": "query", "required": False, "schema": {"type": "string", "default": "guest"}},
    ]
    assert chat["responses"] == {"101": {"description": "Switching Protocols: the WebSocket is open"}}
    assert chat["x-websocket"] == {"subprotocols": []}
    # An HTTP GET on the same path keeps its operation; the WebSocket adds its 101 to it.
    feed = spec["paths"]["/feed"]["get"]
    assert set(feed["responses"]) == {"200", "101"}
    assert feed["x-websocket"] == {"subprotocols": ["feed.v1"]}
    # And the route documented is the route served.
    async with server.connect("/chat/lobby?nick=ann") as ws:
        await ws.send("hi")
        assert await receive(ws) == "lobby ann: hi"


def test_docs_is_swagger_ui_on_the_document_without_the_global_headers(start_server):
    port = start_server("openapi_app").port
    page = get(port, "/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js" in page.text
    assert 'url: "/openapi.json"' in page.text
    assert "<title>Shop - Swagger UI</title>" in page.text
    # As in Robyn, the app's global response headers stay off the two docs routes.
    assert "x-shop" not in page.headers
    assert "x-shop" not in get(port, "/openapi.json").headers
    assert get(port, "/shop/cart").headers["x-shop"] == "1"


def test_openapi_file_path_is_served_as_written(start_server):
    port = start_server("openapi_file").port
    written = json.loads((APPS / "openapi_files" / "spec.json").read_text())
    assert document(port) == written
    assert get(port, "/docs").status_code == 200


def test_an_apps_own_docs_route_wins(start_server):
    server = start_server("openapi_own_docs")
    assert get(server.port, "/docs").text == "our own docs"
    assert set(document(server.port)["paths"]) == {"/docs", "/ping"}
    server.wait_for(r"the app's own GET /docs is served there, not the server's OpenAPI docs page")


def test_a_missing_openapi_file_stops_start_up(binary):
    result = run_to_exit(binary, "--app", "startup.openapi_missing_file", "--port", "0")
    assert result.returncode != 0
    missing = APPS / "startup" / "no_such_spec.json"
    assert f"openapi_file_path: no such file {missing}" in result.stderr, result.stderr

"""What plain HTTP gets on a mixed app: the handshake's refusals, and the app's HTTP routes beside them."""

from __future__ import annotations

import socket

import pytest
from conftest import receive
from websockets.exceptions import InvalidStatus

APP = "mixed"


def raw_exchange(port: int, request: str) -> tuple[str, bool]:
    """Sends a raw request; returns the whole response and whether the server then closed
    the connection (EOF) rather than leaving it open."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
            closed = True
        except TimeoutError:
            closed = False
    return data.decode(errors="replace"), closed


def get(path: str, *headers: str) -> str:
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", *headers, "", ""]
    return "\r\n".join(lines)


async def test_an_unknown_path_is_404_at_once(module_server):
    with pytest.raises(InvalidStatus) as refused:
        async with module_server.connect("/nowhere"):
            pass
    assert refused.value.response.status_code == 404


def test_a_refused_handshake_closes_the_socket(module_server):
    upgrade = (
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    )
    response, closed = raw_exchange(module_server.port, get("/nowhere", *upgrade))
    assert response.startswith("HTTP/1.1 404")
    assert closed


def test_a_plain_get_on_a_websocket_path_is_426(module_server):
    response, closed = raw_exchange(module_server.port, get("/ws"))
    assert response.startswith("HTTP/1.1 426")
    assert "upgrade: websocket" in response.lower()
    assert closed


def test_a_wrong_websocket_version_is_426_naming_13(module_server):
    headers = (
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 8",
    )
    response, _ = raw_exchange(module_server.port, get("/ws", *headers))
    assert response.startswith("HTTP/1.1 426")
    assert "sec-websocket-version: 13" in response.lower()


def test_a_missing_key_is_400(module_server):
    response, closed = raw_exchange(
        module_server.port, get("/ws", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13")
    )
    assert response.startswith("HTTP/1.1 400")
    assert closed


UPGRADE = ("Upgrade: websocket", "Connection: Upgrade")
KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
VERSION = "Sec-WebSocket-Version: 13"


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ((*UPGRADE, "Sec-WebSocket-Key: abc", VERSION), "16 random bytes in base64"),
        ((*UPGRADE, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ", VERSION), "16 random bytes in base64"),
        ((*UPGRADE, "Sec-WebSocket-Key: aGVsbG8gd29ybGQ=", VERSION), "16 random bytes in base64"),
        ((*UPGRADE, KEY, KEY, VERSION), "Sec-WebSocket-Key is given more than once"),
        ((*UPGRADE, KEY, VERSION, VERSION), "Sec-WebSocket-Version is given more than once"),
    ],
    ids=["short key", "unpadded key", "11-byte key", "repeated key", "repeated version"],
)
def test_a_malformed_handshake_is_400_and_the_server_serves_on(module_server, headers, says):
    response, closed = raw_exchange(module_server.port, get("/ws", *headers))
    assert response.startswith("HTTP/1.1 400"), response
    assert says in response
    assert closed
    assert extension_answer(module_server.port) is None, "a well-formed handshake still upgrades"


def test_a_handshake_without_host_is_400(module_server):
    request = "\r\n".join(["GET /ws HTTP/1.1", *UPGRADE, KEY, VERSION, "", ""])
    response, closed = raw_exchange(module_server.port, request)
    assert response.startswith("HTTP/1.1 400"), response
    assert "missing Host header" in response
    assert closed


def extension_answer(port: int, *offers: str) -> str | None:
    """The server's Sec-WebSocket-Extensions answer to `offers` (None: no header)."""
    headers = (*UPGRADE, KEY, VERSION, *(f"Sec-WebSocket-Extensions: {offer}" for offer in offers))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(get("/ws", *headers).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101"), lines[0]
    answers = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sec-websocket-extensions:")]
    assert len(answers) <= 1
    return answers[0] if answers else None


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    ],
)
def test_an_offer_rfc_7692_says_to_decline_is_declined(module_server, offer):
    assert extension_answer(module_server.port, offer) is None


def test_the_next_offer_is_taken_when_the_first_is_declined(module_server):
    answer = extension_answer(
        module_server.port,
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=10",
    )
    assert answer is not None
    parameters = [part.strip() for part in answer.split(";")]
    assert parameters[0] == "permessage-deflate"
    assert "server_max_window_bits=10" in parameters
    # Every parameter well formed: a window size always has its value.
    for parameter in parameters[1:]:
        name, _, value = parameter.partition("=")
        assert name in {
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        }
        if name == "server_max_window_bits":
            assert value.isdigit() and 8 <= int(value) <= 15


def test_a_post_to_a_websocket_path_is_405(module_server):
    request = "POST /ws HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
    response, _ = raw_exchange(module_server.port, request)
    assert response.startswith("HTTP/1.1 405")
    assert "allow: get" in response.lower()


def test_the_http_routes_of_a_mixed_app_are_served(module_server):
    response, _ = raw_exchange(module_server.port, get("/", "Connection: close"))
    assert response.startswith("HTTP/1.1 200")
    assert response.endswith("hello")
    response, _ = raw_exchange(module_server.port, get("/api/status", "Connection: close"))
    assert response.startswith("HTTP/1.1 200")
    assert response.endswith('{"status":"ok"}')
    request = "POST /items HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    response, _ = raw_exchange(module_server.port, request)
    assert response.startswith("HTTP/1.1 201")
    assert "server: robyn" in response.lower()


async def test_the_websocket_route_of_a_mixed_app_works(module_server):
    async with module_server.connect("/ws") as ws:
        await ws.send("hi")
        assert await receive(ws) == "hi"
    # Refusals left the server serving.
    async with module_server.connect("/ws") as ws:
        await ws.send("again")
        assert await receive(ws) == "again"

"""Signed-cookie sessions (tests/apps/sessions_auth.py): the cookie set, read back, changed in
place, cleared, refused when tampered with or not JSON, never left on a shared ``Response``;
the session read-only in a WebSocket's ``on_connect``; one login for the page and its socket
(``websocket.authenticate()`` with the app's AuthenticationHandler, by session or bearer
token). Then pydantic bodies (tests/apps/pydantic_body.py) and an app without pydantic
(tests/apps/no_pydantic.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from conftest import TIMEOUT, receive, still_serves
from websockets.exceptions import InvalidStatus

APP = "sessions_auth"
COOKIE = "sid"


def http(server: Any) -> str:
    return f"http://127.0.0.1:{server.port}"


def logged_in(server: Any, user: str) -> requests.Session:
    client = requests.Session()
    reply = client.post(f"{http(server)}/login", json={"user": user}, timeout=TIMEOUT)
    assert reply.json() == {"user": user}
    return client


# -- sessions over HTTP ----------------------------------------------------------------------


def test_the_cookie_is_set_signed_with_the_configured_attributes_and_read_back(module_server) -> None:
    client = logged_in(module_server, "ann")
    cookie = client.cookies.get(COOKIE)
    assert cookie is not None and cookie.count(".") == 1 and "ann" not in cookie  # base64, signed
    reply = client.get(f"{http(module_server)}/me", timeout=TIMEOUT)
    assert reply.json() == {"user": "ann"}
    # Reading the session writes no cookie.
    assert "set-cookie" not in reply.headers


def test_the_login_cookie_carries_robyns_attributes(module_server) -> None:
    reply = requests.post(f"{http(module_server)}/login", json={"user": "ann"}, timeout=TIMEOUT)
    set_cookie = reply.headers["set-cookie"]
    assert set_cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", f"Max-Age={14 * 24 * 3600}"):
        assert attribute in set_cookie


def test_each_client_has_its_own_session(module_server) -> None:
    ann, bob = requests.Session(), requests.Session()
    url = f"{http(module_server)}/counter"
    assert [ann.get(url, timeout=TIMEOUT).json()["count"] for _ in range(3)] == [1, 2, 3]
    assert bob.get(url, timeout=TIMEOUT).json()["count"] == 1


def test_a_value_changed_in_place_is_saved(module_server) -> None:
    client = requests.Session()
    url = f"{http(module_server)}/cart/add"
    client.get(url, params={"item": "tea"}, timeout=TIMEOUT)
    assert client.get(url, params={"item": "milk"}, timeout=TIMEOUT).json() == {"cart": ["tea", "milk"]}
    assert client.get(url, params={"item": "jam"}, timeout=TIMEOUT).json() == {"cart": ["tea", "milk", "jam"]}


def test_a_tampered_cookie_is_an_empty_session(module_server) -> None:
    cookie = logged_in(module_server, "ann").cookies[COOKIE]
    payload, signature = cookie.split(".")
    forged = payload.replace(payload[-2:], "xx" if payload[-2:] != "xx" else "yy") + "." + signature
    for value in (forged, cookie[:-2] + "zz", "not-a-session", ""):
        reply = requests.get(f"{http(module_server)}/me", cookies={COOKIE: value}, timeout=TIMEOUT)
        assert reply.status_code == 401, value


def test_clearing_the_session_deletes_the_cookie(module_server) -> None:
    client = logged_in(module_server, "ann")
    reply = client.get(f"{http(module_server)}/logout", timeout=TIMEOUT)
    assert "Max-Age=0" in reply.headers["set-cookie"]
    assert client.get(f"{http(module_server)}/me", timeout=TIMEOUT).status_code == 401


def test_a_shared_response_object_never_carries_a_session_cookie(module_server) -> None:
    remembered = requests.get(f"{http(module_server)}/remember", timeout=TIMEOUT)
    assert COOKIE in remembered.cookies
    plain = requests.get(f"{http(module_server)}/plain", timeout=TIMEOUT)
    assert (plain.text, plain.headers.get("set-cookie")) == ("ok", None)


def test_a_session_that_is_not_json_is_a_500_that_says_why(module_server) -> None:
    reply = requests.get(f"{http(module_server)}/not-json", timeout=TIMEOUT)
    assert reply.status_code == 500
    module_server.wait_for("a session holds only JSON values")


# -- the session and the login on a WebSocket ------------------------------------------------


async def test_on_connect_reads_the_session_and_cannot_write_it(module_server) -> None:
    cookie = logged_in(module_server, "ann").cookies[COOKIE]
    async with module_server.connect("/peek", additional_headers={"Cookie": f"{COOKIE}={cookie}"}) as ws:
        greeting = json.loads(await receive(ws))
    assert greeting["session"] == {"user": "ann"}
    assert greeting["write"].startswith("a WebSocket's session is read-only")


async def test_the_page_login_lets_its_socket_in(module_server) -> None:
    cookie = logged_in(module_server, "ann").cookies[COOKIE]
    async with module_server.connect("/chat", additional_headers={"Cookie": f"{COOKIE}={cookie}"}) as ws:
        assert await receive(ws) == "welcome ann"
        await ws.send("hi")
        assert await receive(ws) == "ann: hi"


async def test_a_bearer_token_lets_a_client_in_through_the_same_handler(module_server) -> None:
    async with module_server.connect("/chat", additional_headers={"Authorization": "Bearer t0k3n"}) as ws:
        assert await receive(ws) == "welcome bob"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Cookie": f"{COOKIE}=forged.signature"}],
    ids=["nothing", "unknown-token", "forged-cookie"],
)
async def test_without_a_login_the_handshake_is_refused(module_server, headers: dict[str, str]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with module_server.connect("/chat", additional_headers=headers):
            pass
    assert refused.value.response.status_code == 401
    assert refused.value.response.body == b"log in first"
    await still_serves(module_server)


# -- pydantic bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/items", "/items/async"])
def test_a_pydantic_body_that_does_not_fit_is_a_422_with_robyns_detail(start_server, path: str) -> None:
    server = start_server("pydantic_body")
    reply = requests.post(f"{http(server)}{path}", json={"name": "tea", "price": -1}, timeout=TIMEOUT)
    assert (reply.status_code, reply.headers["content-type"]) == (422, "application/json")
    body = reply.json()
    assert body["error"] == "Validation Error"
    [problem] = body["detail"]
    assert (problem["type"], problem["loc"], problem["input"]) == ("greater_than", ["price"], -1)
    assert problem["msg"] == "Input should be greater than 0"
    broken = requests.post(f"{http(server)}{path}", data="{not json", timeout=TIMEOUT)
    assert (broken.status_code, broken.json()["detail"][0]["type"]) == (422, "json_invalid")


def test_a_pydantic_body_that_fits_reaches_the_handler(start_server) -> None:
    server = start_server("pydantic_body")
    reply = requests.post(f"{http(server)}/items", json={"name": "tea", "price": 2.5}, timeout=TIMEOUT)
    assert (reply.status_code, reply.json()) == (200, {"name": "tea", "price": 2.5})
    reply = requests.post(f"{http(server)}/items/async", json={"name": "tea", "price": 2.5}, timeout=TIMEOUT)
    assert reply.json() == {"name": "tea", "total": 5.0}


async def test_an_app_without_pydantic_is_served(start_server) -> None:
    server = start_server("no_pydantic")
    reply = requests.post(f"{http(server)}/point", json={"x": 1, "y": 2}, timeout=TIMEOUT)
    assert reply.json() == {"sum": 3}
    reply = requests.post(f"{http(server)}/note", json={"text": "hi"}, timeout=TIMEOUT)
    assert reply.json() == {"note": {"text": "hi"}, "pydantic": False}
    await still_serves(server)

"""What a handler's return value becomes (robyn/_returns.py), Robyn's ``Headers`` and
``Response`` with its cookies, and the response helpers (``jsonify``, ``serve_file``...)."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import pytest
from robyn import Headers, Response, html, jsonify, serve_file, serve_html, status_codes
from robyn._response import Cookie
from robyn._returns import to_response, to_wire
from robyn._streaming import Streamed
from robyn.responses import SSEMessage, SSEResponse, StreamingResponse


def wire(value: Any, status: int | None = None) -> tuple[int, dict[str, str], bytes]:
    code, headers, body = to_wire(value, status)
    return code, dict(headers), body


# -- return values ----------------------------------------------------------------------------


def test_str_is_text_plain() -> None:
    assert wire("hello") == (200, {"content-type": "text/plain"}, b"hello")


def test_bytes_are_an_octet_stream() -> None:
    assert wire(b"\x00\x01") == (200, {"content-type": "application/octet-stream"}, b"\x00\x01")


@pytest.mark.parametrize(
    ("value", "text"),
    [({"a": 1, "ok": True, "none": None}, '{"a":1,"ok":true,"none":null}'), ([], "[]"), ([1, "two"], '[1,"two"]')],
)
def test_dicts_and_lists_are_compact_json(value: Any, text: str) -> None:
    assert wire(value) == (200, {"content-type": "application/json"}, text.encode())


def test_json_is_utf8_not_escaped() -> None:
    assert wire({"name": "Zoë"})[2] == '{"name":"Zoë"}'.encode()


@pytest.mark.parametrize(("value", "text"), [(None, "None"), (200, "200"), (dict, "<class 'dict'>"), (2.5, "2.5")])
def test_anything_else_is_its_str_in_text_plain(value: Any, text: str) -> None:
    assert wire(value) == (200, {"content-type": "text/plain"}, text.encode())


def test_a_response_is_sent_as_it_is() -> None:
    response = Response(201, {"X-Kind": "made"}, "body")
    assert wire(response) == (201, {"x-kind": "made"}, b"body")


def test_the_routes_status_code_applies_to_plain_returns_only() -> None:
    assert wire({"id": 1}, 201)[0] == 201
    assert wire("made", 201)[0] == 201
    assert wire(Response(200, {}, "mine"), 201)[0] == 200


def test_a_tuple_is_body_headers_and_status() -> None:
    assert wire(("denied", {}, 403)) == (403, {"content-type": "text/plain"}, b"denied")
    assert wire(({"a": 1}, {"X-A": "b"}, 202)) == (202, {"x-a": "b", "content-type": "application/json"}, b'{"a":1}')
    assert wire(("<p>", {"Content-Type": "text/html"}, 200))[1] == {"content-type": "text/html"}


def test_a_tuple_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="body, headers, status_code"):
        to_wire(("a", {}))


def test_an_event_stream_is_streamed_with_the_headers_that_keep_caches_off_it() -> None:
    chunks = iter(["data: x\n\n"])
    code, headers, body = to_wire(SSEResponse(chunks, headers=Headers({"Cache-Control": "no-cache"})))
    assert isinstance(body, Streamed)
    assert (code, body.content, body.events) == (200, chunks, True)
    assert dict(headers) == {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",  # the app's own wins
        "pragma": "no-cache",
        "expires": "0",
        "x-accel-buffering": "no",
    }


def test_a_byte_stream_keeps_its_media_type_and_is_not_kept_alive() -> None:
    code, headers, body = to_wire(
        StreamingResponse(iter([b"x"]), status_code=201, media_type="application/octet-stream")
    )
    assert isinstance(body, Streamed)
    assert (code, dict(headers), body.events) == (201, {"content-type": "application/octet-stream"}, False)


def test_jsonify_writes_what_orjson_writes_for_robyn_apps() -> None:
    @dataclasses.dataclass
    class Point:
        x: int

    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert jsonify({"at": when, "point": Point(1)}) == '{"at":"2024-01-02T03:04:05","point":{"x":1}}'


def test_a_pydantic_like_model_is_json() -> None:
    # Recognised by its base class (pydantic itself is not installed here).
    base = type("BaseModel", (), {"__module__": "pydantic.main"})

    class User(base):  # type: ignore[misc, valid-type]
        def model_dump_json(self) -> str:
            return '{"name":"ada"}'

        def model_dump(self, mode: str) -> dict[str, str]:
            return {"name": "ada"}

    assert wire(User()) == (200, {"content-type": "application/json"}, b'{"name":"ada"}')
    assert wire({"users": [User()]})[2] == b'{"users":[{"name":"ada"}]}'


# -- files and html ---------------------------------------------------------------------------


def test_serve_file_is_an_attachment_read_when_sent(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("the report")
    code, headers, body = wire(serve_file(str(path)))
    assert (code, body) == (200, b"the report")
    assert headers == {"content-type": "text/plain", "content-disposition": "attachment; filename=report.txt"}


def test_serve_file_names_the_download_and_quotes_odd_names(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00")
    headers = wire(serve_file(str(path), "my résumé.pdf"))[1]
    assert headers["content-type"] == "application/pdf"
    assert (
        headers["content-disposition"]
        == "attachment; filename=\"my r?sum?.pdf\"; filename*=UTF-8''my%20r%C3%A9sum%C3%A9.pdf"
    )


def test_an_unknown_kind_of_file_is_an_octet_stream(tmp_path: Path) -> None:
    path = tmp_path / "blob.zzz"
    path.write_bytes(b"x")
    assert wire(serve_file(str(path)))[1]["content-type"] == "application/octet-stream"


def test_serve_html_and_html(tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    path.write_text("<!DOCTYPE html><p>hi</p>")
    assert wire(serve_html(str(path))) == (200, {"content-type": "text/html"}, b"<!DOCTYPE html><p>hi</p>")
    assert wire(html("<b>x</b>")) == (200, {"content-type": "text/html"}, b"<b>x</b>")


def test_a_missing_file_raises_when_the_response_is_made() -> None:
    with pytest.raises(FileNotFoundError):
        to_response(serve_file("/no/such/file.txt"))


# -- Response and cookies ---------------------------------------------------------------------


def test_response_takes_description_or_body_and_not_both() -> None:
    assert Response(200, None, "a").description == "a"
    assert Response(200, body=b"b").description == b"b"
    with pytest.raises(TypeError, match="missing required argument"):
        Response(200)
    with pytest.raises(TypeError, match="both"):
        Response(200, None, "a", body="b")


def test_response_refuses_a_body_that_is_not_text_or_bytes() -> None:
    with pytest.raises(ValueError, match="Could not convert"):
        Response(200, {}, 5)  # type: ignore[arg-type]
    response = Response(200, {}, "")
    with pytest.raises(ValueError, match="Could not convert"):
        response.description = None  # type: ignore[assignment]


def test_response_headers_may_be_a_dict() -> None:
    response = Response(200, {"A": "1"}, "")
    response.headers = {"B": "2"}  # type: ignore[assignment]
    assert response.headers.get("b") == "2"


def test_set_cookie_writes_one_set_cookie_header_per_cookie() -> None:
    response = Response(200, Headers({}), "")
    response.set_cookie("session", "first")
    response.set_cookie("theme", "dark")
    response.set_cookie("session", "final")
    assert to_wire(response)[1] == [("set-cookie", "session=final"), ("set-cookie", "theme=dark")]


def test_cookie_attributes_in_actix_web_order() -> None:
    cookie = Cookie("v", path="/", domain="example.com", max_age=3600, secure=True, http_only=True, same_site="strict")
    assert (
        cookie.header_value("k") == "k=v; HttpOnly; SameSite=Strict; Secure; Path=/; Domain=example.com; Max-Age=3600"
    )
    assert Cookie("v", same_site="none").header_value("k") == "k=v; SameSite=None; Secure"
    with pytest.raises(ValueError, match="same_site"):
        Cookie("v", same_site="sometimes").header_value("k")


# -- Headers ----------------------------------------------------------------------------------


def test_headers_are_case_insensitive_and_set_replaces() -> None:
    headers = Headers({"Content-Type": "text/plain", "X-Many": ["1", "2"]})
    assert headers.get("content-type") == headers["CONTENT-TYPE"] == "text/plain"
    assert "content-TYPE" in headers and headers.contains("x-many")
    assert headers.get_all("x-many") == ["1", "2"] and headers.get("x-many") == "2"
    headers.set("X-Many", "3")
    assert headers.get_all("x-many") == ["3"]
    headers.append("x-many", "4")
    assert headers.to_dict() == {"content-type": "text/plain", "x-many": "3, 4"}
    assert headers.items() == [("content-type", "text/plain"), ("x-many", "4")]
    assert headers.multi_items() == [("content-type", "text/plain"), ("x-many", "3"), ("x-many", "4")]
    assert headers["missing"] is None and headers.get_all("missing") == []


def test_headers_populate_is_empty_and_equality() -> None:
    headers = Headers({})
    assert headers.is_empty()
    headers.populate_from_dict({"A": "1"})
    headers["b"] = "2"
    assert headers == Headers({"a": "1", "B": "2"})
    assert headers.get_headers() == {"a": ["1"], "b": ["2"]}


def test_status_code_names_include_robyns_older_ones() -> None:
    assert status_codes.HTTP_404_NOT_FOUND == 404
    assert status_codes.HTTP_422_UNPROCESSABLE_ENTITY == 422
    assert status_codes.HTTP_422_UNPROCESSABLE_CONTENT == 422
    assert status_codes.HTTP_306_RESERVED == 306


def test_sse_message_text() -> None:
    assert SSEMessage("hi", event="e", id="1") == "event: e\nid: 1\ndata: hi\n\n"
    assert SSEMessage("a\nb") == "data: a\ndata: b\n\n"

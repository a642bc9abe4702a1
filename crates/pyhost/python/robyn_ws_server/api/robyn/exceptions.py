"""``robyn.exceptions``: exceptions an app may raise and turn into responses with its
``@app.exception`` handler (they are not answered specially on their own, as in Robyn)."""

from __future__ import annotations

import http


class HTTPException(Exception):  # noqa: N818 (Robyn's public name)
    def __init__(self, status_code: int, detail: str | None = None) -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail if detail is not None else http.HTTPStatus(status_code).phrase

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, detail={self.detail})"


class WebSocketException(Exception):  # noqa: N818 (Robyn's public name)
    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, reason={self.reason})"


__all__ = ["HTTPException", "WebSocketException"]

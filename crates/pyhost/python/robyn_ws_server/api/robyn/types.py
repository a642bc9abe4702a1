"""``robyn.types``: annotations that name a part of the request in a handler's signature
(``Body``, ``JsonBody``, ``Method``, ``PathParams``...), and the types of ``Request``'s fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NewType, Optional, TypedDict, Union

from robyn._params import ParameterError as QueryParamValidationError
from robyn._request import Url

PathParams = NewType("PathParams", dict[str, str])
Method = NewType("Method", str)
FormData = NewType("FormData", dict[str, str])
Files = NewType("Files", dict[str, bytes])
# Not `str | None`: a NewType's type is evaluated at once, on Python 3.9 too.
IPAddress = NewType("IPAddress", Optional[str])  # type: ignore[valid-newtype]  # as Robyn has it

RequestMethod = Literal["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE"]
RequestBody = Union[str, bytes]
RequestURL = Url


@dataclass
class Directory:
    """A folder served with ``app.serve_directory``."""

    route: str
    directory_path: str
    show_files_listing: bool
    index_file: str | None

    def as_list(self) -> list[object]:
        return [self.route, self.directory_path, self.show_files_listing, self.index_file]


class JSONResponse(TypedDict):
    """Subclassed to describe a JSON response body (for OpenAPI)."""


class Body:
    """Annotates the handler parameter that receives the raw body (``str``, or ``bytes`` when
    it is not UTF-8); subclassed to describe it (for OpenAPI)."""


class JsonBody:
    """Annotates the handler parameter that receives the body parsed as JSON; subclassed to
    describe it (for OpenAPI). A body that is not JSON is answered 400 before the handler
    runs."""


__all__ = [
    "Body",
    "Directory",
    "Files",
    "FormData",
    "IPAddress",
    "JSONResponse",
    "JsonBody",
    "Method",
    "PathParams",
    "QueryParamValidationError",
    "RequestBody",
    "RequestMethod",
    "RequestURL",
]

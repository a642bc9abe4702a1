"""``robyn.openapi``: the OpenAPI document an app serves at ``/openapi.json`` (and as Swagger UI
at ``/docs``), as Robyn 0.88.0 names its parts. ``Robyn(__file__, openapi=OpenAPI(info=...))``
sets the document's metadata; ``openapi_file_path`` serves a file of the user's instead.

The paths are filled in when the server starts (``robyn._openapi_document``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from robyn._openapi_docs import docs_page
from robyn._response import Response


@dataclass
class Contact:
    name: str | None = None
    url: str | None = None
    email: str | None = None


@dataclass
class License:
    name: str | None = None
    url: str | None = None


@dataclass
class Server:
    url: str
    description: str | None = None


@dataclass
class ExternalDocumentation:
    description: str | None = None
    url: str | None = None


@dataclass
class Components:
    """Reusable parts of the document; the server adds the schemas of pydantic models and the
    security schemes of ``configure_authentication``."""

    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    requestBodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # noqa: N815 (OpenAPI's name)
    securitySchemes: dict[str, dict[str, Any]] = field(default_factory=dict)  # noqa: N815
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    pathItems: dict[str, dict[str, Any]] = field(default_factory=dict)  # noqa: N815


@dataclass
class OpenAPIInfo:
    """The document's metadata. Robyn keeps ``servers``, ``externalDocs`` and ``components``
    here too; they go to the top level of the document, where OpenAPI has them."""

    title: str = "Robyn API"
    version: str = "1.0.0"
    description: str | None = None
    termsOfService: str | None = None  # noqa: N815 (OpenAPI's name)
    contact: Contact = field(default_factory=Contact)
    license: License = field(default_factory=License)
    servers: list[Server] = field(default_factory=list)
    externalDocs: ExternalDocumentation | None = field(default_factory=ExternalDocumentation)  # noqa: N815
    components: Components = field(default_factory=Components)


@dataclass
class OpenAPI:
    """The app's document (``app.openapi``): ``openapi_spec`` is the dict ``/openapi.json``
    answers with."""

    info: OpenAPIInfo = field(default_factory=OpenAPIInfo)
    openapi_spec: dict[str, Any] = field(init=False)
    # True once a user's file replaced the document: the server then adds nothing to it.
    openapi_file_override: bool = False

    def __post_init__(self) -> None:
        self.openapi_spec = {
            "openapi": "3.1.0",
            "info": _info_object(self.info),
            "paths": {},
            "components": asdict(self.info.components),
            "servers": [_without_nulls(asdict(server)) for server in self.info.servers],
        }
        external = self.info.externalDocs
        # OpenAPI requires a url here: an ExternalDocumentation without one is left out.
        if external is not None and external.url:
            self.openapi_spec["externalDocs"] = _without_nulls(asdict(external))

    def add_security_scheme(self, name: str, scheme: dict[str, Any]) -> None:
        """Adds ``components.securitySchemes[name]``; routes with ``auth_required=True`` then
        list it as their security requirement."""
        if not self.openapi_file_override:
            self.openapi_spec["components"].setdefault("securitySchemes", {})[name] = scheme

    def override_openapi(self, openapi_json_spec_path: str | os.PathLike[str]) -> None:
        """Serves the JSON file at ``openapi_json_spec_path`` as the document, unchanged."""
        self.openapi_spec = load_document(openapi_json_spec_path)
        self.openapi_file_override = True

    def get_openapi_config(self) -> dict[str, Any]:
        return self.openapi_spec

    def get_openapi_docs_page(self) -> Response:
        """The Swagger UI page served at ``/docs``."""
        return docs_page(self.openapi_spec)


def load_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A user's OpenAPI file, read at once so that a wrong path or broken JSON stops the app at
    start-up with a sentence naming the file."""
    where = os.path.abspath(path)
    try:
        with open(where, encoding="utf-8") as file:
            document = json.load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"openapi_file_path: no such file {where}") from None
    except json.JSONDecodeError as error:
        raise ValueError(
            f"openapi_file_path: {where} is not JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    if not isinstance(document, dict):
        raise ValueError(f"openapi_file_path: {where} holds a JSON {type(document).__name__}, not an object")
    return document


def _info_object(info: OpenAPIInfo) -> dict[str, Any]:
    found: dict[str, Any] = {"title": info.title, "version": info.version}
    for key, value in (
        ("description", info.description),
        ("termsOfService", info.termsOfService),
        ("contact", _without_nulls(asdict(info.contact))),
        ("license", _without_nulls(asdict(info.license))),
    ):
        if value:
            found[key] = value
    return found


def _without_nulls(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


__all__ = [
    "Components",
    "Contact",
    "ExternalDocumentation",
    "License",
    "OpenAPI",
    "OpenAPIInfo",
    "Server",
]

"""The app's OpenAPI paths, written into ``app.openapi.openapi_spec`` when the server starts:
one operation per HTTP route (from its handler's signature, docstring and the decorator's
``openapi_*`` options), and a GET operation with a ``101`` response and an ``x-websocket``
extension per WebSocket route."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from robyn._http_params import is_easy_access, is_typed_dict
from robyn._http_route import HttpRoute, join
from robyn._http_routing import HttpRouting
from robyn._openapi_schema import Schema, SchemaMaker
from robyn._params import signature, unwrap_optional
from robyn._query import QueryParams
from robyn._response import Response
from robyn._tracebacks import one_line
from robyn.jsonify import is_pydantic_model
from robyn.responses import StreamingResponse
from robyn.types import Body, JsonBody

if TYPE_CHECKING:
    from robyn._app import Robyn
    from robyn._endpoint import Endpoint

_log = logging.getLogger("robyn.openapi")

_OK = "Successful Response"
_WEBSOCKET_TAG = "websocket"


def build(app: Robyn) -> None:
    """Fills in the paths, the pydantic models' schemas and the security schemes (nothing when
    the document is a user's file)."""
    openapi = app.openapi
    if openapi is None or openapi.openapi_file_override:
        return
    spec = openapi.openapi_spec
    components: dict[str, Any] = spec.setdefault("components", {})
    for name, scheme in _security_schemes(app, components.get("securitySchemes") or {}).items():
        openapi.add_security_scheme(name, scheme)
    schemes = list(components.get("securitySchemes") or {})
    maker = SchemaMaker()
    paths: dict[str, dict[str, Any]] = spec.setdefault("paths", {})
    for route, pattern, tags in _routes(app):
        if not route.openapi.get("include_in_schema", True):
            continue
        try:
            operation = _http_operation(route, pattern, tags, schemes, maker)
        except Exception as error:  # an annotation no schema fits (pydantic refuses some): serve the rest
            _left_out(f"{route.method} {pattern}", error)
            continue
        paths.setdefault(openapi_path(pattern), {})[route.method.lower()] = operation
    for endpoint in app.endpoints:
        try:
            _add_websocket(paths.setdefault(openapi_path(endpoint.path), {}), endpoint, maker)
        except Exception as error:
            _left_out(f"the WebSocket route {endpoint.path}", error)
    components.setdefault("schemas", {}).update(maker.components)
    # Empty buckets say nothing; an empty securitySchemes would give Swagger UI an empty
    # "Authorize" dialog.
    for key in [key for key, value in components.items() if not value]:
        del components[key]


def _left_out(route: str, error: Exception) -> None:
    _log.warning("OpenAPI: %s is left out of /openapi.json: describing it raised %s", route, one_line(error))


def openapi_path(pattern: str) -> str:
    """``/items/{id}`` for Robyn's ``/items/:id`` (and ``{rest}`` for a last ``*rest``)."""
    return "/".join(
        "{" + segment[1:] + "}" if segment[:1] in (":", "*") and segment[1:] else segment
        for segment in pattern.split("/")
    )


def _routes(
    router: HttpRouting, prefix: str = "", tags: tuple[str, ...] = ()
) -> Iterator[tuple[HttpRoute, str, list[str]]]:
    """Every HTTP route below ``router`` with its full pattern and tags: those of the
    SubRouters it is in (outermost first), then its own."""
    for route in router.http_routes:
        own = [tag for tag in route.openapi.get("tags", []) if tag not in tags]
        yield route, join(prefix, route.pattern), [*tags, *own]
    below = join(prefix, router._own_prefix()) if router._own_prefix() else prefix
    for included in router.included_routers:
        more = [tag for tag in getattr(included, "tags", []) if tag not in tags]
        yield from _routes(included, below, (*tags, *more))


def _security_schemes(app: Robyn, known: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A scheme for each router's ``configure_authentication``, as Robyn names them: a bearer
    token getter is ``BearerAuth``; any other, when nothing else is known, the
    ``Authorization`` header as an API key."""
    found: dict[str, dict[str, Any]] = {}
    for router, _ in app.walk():
        handler = router.authentication_handler
        if handler is None:
            continue
        scheme = str(getattr(getattr(handler, "token_getter", None), "scheme", "") or "")
        if scheme.lower().startswith("bearer"):
            found["BearerAuth"] = {"type": "http", "scheme": "bearer"}
        elif not known and not found:
            found["ApiKeyAuth"] = {"type": "apiKey", "in": "header", "name": "Authorization"}
    return found


# -- HTTP routes -------------------------------------------------------------------------------


def _http_operation(
    route: HttpRoute, pattern: str, tags: list[str], schemes: list[str], maker: SchemaMaker
) -> dict[str, Any]:
    meta = route.openapi
    operation: dict[str, Any] = {}
    if meta.get("name"):
        operation["summary"] = meta["name"]
    description = inspect.getdoc(route.handler)
    if description:
        operation["description"] = description
    operation["tags"] = tags
    if meta.get("deprecated"):
        operation["deprecated"] = True
    if route.auth_required and schemes:
        # Any one of them will do (a list of requirements is a choice).
        operation["security"] = [{name: []} for name in schemes]

    params = _parameters(route.handler)
    parameters = _path_parameters(pattern, {param.name: param for param in params if is_easy_access(param)}, maker)
    body: dict[str, Any] | None = None
    for param in params:
        annotation = param.annotation
        if isinstance(annotation, type) and issubclass(annotation, QueryParams):
            # Its fields document the query string; the handler gets every parameter anyway.
            parameters += [
                {"name": name, "in": "query", "required": False, "schema": schema}
                for name, schema in maker.schema(annotation).get("properties", {}).items()
            ]
        elif is_easy_access(param) and param.name not in _path_names(pattern):
            parameters.append(_query_parameter(param, maker))
        elif body is None:
            body = _request_body(annotation, maker)
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body

    returned = meta.get("response_model")
    if returned is None:
        returned = signature(route.handler).return_annotation
    success = str(route.status_code or 200)
    operation["responses"] = {success: _response(returned, maker)}
    for status, extra in (meta.get("responses") or {}).items():
        documented = _extra_response(extra, maker)
        if documented is not None:
            operation["responses"][str(status)] = documented
    return operation


def _parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    return [
        param
        for param in signature(function).parameters.values()
        if param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _path_names(pattern: str) -> list[str]:
    return [segment[1:] for segment in pattern.split("/") if segment[:1] in (":", "*") and segment[1:]]


def _path_parameters(pattern: str, typed: dict[str, inspect.Parameter], maker: SchemaMaker) -> list[dict[str, Any]]:
    """Each of the pattern's parameters, typed as the handler's easy-access parameter of that
    name converts it (else a string)."""
    found = []
    for name in _path_names(pattern):
        param = typed.get(name)
        schema = _value_schema(param, maker) if param is not None else {"type": "string"}
        parameter = {"name": name, "in": "path", "required": True, "schema": schema}
        if "/*" + name in pattern:
            # OpenAPI's path parameters stop at a slash; Robyn's last `*name` does not.
            parameter["description"] = "the rest of the path, slashes included"
        found.append(parameter)
    return found


def _query_parameter(param: inspect.Parameter, maker: SchemaMaker) -> dict[str, Any]:
    _, optional = unwrap_optional(param.annotation)
    has_default = param.default is not inspect.Parameter.empty
    schema = _value_schema(param, maker)
    if has_default and isinstance(param.default, (str, int, float, bool)):
        schema["default"] = param.default
    return {"name": param.name, "in": "query", "required": not (has_default or optional), "schema": schema}


def _value_schema(param: inspect.Parameter, maker: SchemaMaker) -> Schema:
    """What an easy-access parameter converts its text to (``str`` when unannotated)."""
    annotation, _ = unwrap_optional(param.annotation)
    if annotation is inspect.Parameter.empty:
        return {"type": "string"}
    return maker.schema(annotation)


def _request_body(annotation: Any, maker: SchemaMaker) -> dict[str, Any] | None:
    if not isinstance(annotation, type):
        return None
    if annotation is Body:  # the raw body, text or bytes
        return {"content": {"text/plain": {"schema": {"type": "string"}}}}
    if issubclass(annotation, (Body, JsonBody)) or is_typed_dict(annotation) or is_pydantic_model(annotation):
        return {"content": {"application/json": {"schema": maker.schema(annotation)}}, "required": True}
    return None


def _response(returned: Any, maker: SchemaMaker) -> dict[str, Any]:
    """The success response: its content as the return annotation says (none without one, or
    for a ``Response`` or a stream, whose type the handler chooses)."""
    if returned is inspect.Signature.empty or returned is None:
        return {"description": _OK}
    if isinstance(returned, type) and issubclass(returned, (Response, StreamingResponse)):
        return {"description": _OK}
    if returned is str:
        media = "text/plain"
    elif returned is bytes:
        media = "application/octet-stream"
    else:
        media = "application/json"
    return {"description": _OK, "content": {media: {"schema": maker.schema(returned)}}}


def _extra_response(extra: Any, maker: SchemaMaker) -> dict[str, Any] | None:
    """One of ``responses={...}``: a description, or a Response Object whose ``model`` (a type)
    becomes its JSON content."""
    if isinstance(extra, str):
        return {"description": extra}
    if not isinstance(extra, dict):
        return None
    documented = {key: value for key, value in extra.items() if key != "model"}
    documented.setdefault("description", "")
    model = extra.get("model")
    if model is not None:
        documented.setdefault("content", {})["application/json"] = {"schema": maker.schema(model)}
    return documented


# -- WebSocket routes --------------------------------------------------------------------------


def _add_websocket(path_item: dict[str, Any], endpoint: Endpoint, maker: SchemaMaker) -> None:
    """OpenAPI has no WebSockets: the handshake is a GET answered ``101``, and ``x-websocket``
    says what it opens. A GET route of the app on the same path keeps its operation, which gets
    the ``101`` beside its own responses."""
    extension = {"subprotocols": list(endpoint.subprotocols)}
    upgrade = {"description": "Switching Protocols: the WebSocket is open"}
    existing = path_item.get("get")
    if existing is not None:
        existing["responses"]["101"] = upgrade
        existing["x-websocket"] = extension
        return
    handler = endpoint.handler.function
    operation: dict[str, Any] = {
        "summary": "WebSocket",
        "description": inspect.getdoc(handler) or "Opens a WebSocket (an HTTP/1.1 Upgrade request).",
        "tags": [_WEBSOCKET_TAG],
    }
    parameters = _websocket_parameters(endpoint, maker)
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {"101": upgrade}
    operation["x-websocket"] = extension
    path_item["get"] = operation


def _websocket_parameters(endpoint: Endpoint, maker: SchemaMaker) -> list[dict[str, Any]]:
    """The route's path parameters and the query parameters its callbacks read by name."""
    callbacks = [callback for callback in (endpoint.handler, endpoint.on_connect, endpoint.on_close) if callback]
    named: dict[str, inspect.Parameter] = {}
    for callback in callbacks:
        params = _parameters(callback.function)
        if callback.plan.takes_websocket:
            params = params[1:]
        for param in params:
            if param.name in ("global_dependencies", "router_dependencies", "query_params"):
                continue
            if isinstance(param.annotation, type) and issubclass(param.annotation, QueryParams):
                continue
            named.setdefault(param.name, param)
    path_names = _path_names(endpoint.path)
    found = _path_parameters(endpoint.path, named, maker)
    found += [_query_parameter(param, maker) for name, param in named.items() if name not in path_names]
    return found

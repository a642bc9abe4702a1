"""``GET /openapi.json`` and ``GET /docs`` (Swagger UI), added to the app when the server
starts, as Robyn adds them in ``app.start()``. A route of the app's own on either path wins."""

from __future__ import annotations

import html
import json
import logging
from typing import TYPE_CHECKING, Any

from robyn._headers import Headers
from robyn._http_route import join
from robyn._openapi_document import build
from robyn._response import Response

if TYPE_CHECKING:
    from robyn._app import Robyn

_log = logging.getLogger("robyn.openapi")

DOCUMENT_PATH = "/openapi.json"
DOCS_PATH = "/docs"
# Swagger UI comes from where Robyn's page loads it: the swagger-ui-dist package on unpkg.
SWAGGER_UI = "https://unpkg.com/swagger-ui-dist@5"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{ui}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ui}/swagger-ui-bundle.js"></script>
<script src="{ui}/swagger-ui-standalone-preset.js"></script>
<script>
window.addEventListener("load", () => {{
  window.ui = SwaggerUIBundle({{
    url: "{document}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  }});
}});
</script>
</body>
</html>
"""


def serve(app: Robyn) -> None:
    """Builds the document and adds its two routes (unless OpenAPI is disabled)."""
    if app.openapi is None:
        return
    build(app)
    spec = app.openapi.openapi_spec
    taken = _get_patterns(app)
    served = []
    for path, handler in ((DOCUMENT_PATH, _document_handler(spec)), (DOCS_PATH, _docs_handler(spec))):
        if path in taken:
            _log.info("the app's own GET %s is served there, not the server's OpenAPI %s", path, _what(path))
            continue
        app.add_route("GET", path, handler, is_const=True, include_in_schema=False)
        served.append(path)
    if served:
        # As in Robyn: the app's global response headers stay off these two.
        app.excluded_response_headers_paths = [*(app.excluded_response_headers_paths or []), *served]


def docs_page(spec: dict[str, Any]) -> Response:
    title = str((spec.get("info") or {}).get("title") or "API")
    page = _PAGE.format(title=html.escape(title + " - Swagger UI"), ui=SWAGGER_UI, document=DOCUMENT_PATH)
    return Response(200, Headers({"Content-Type": "text/html; charset=utf-8"}), page)


def _document_handler(spec: dict[str, Any]) -> Any:
    # Encoded once, now: the document does not change while the server runs, and a value JSON
    # cannot hold (a default in a user's schema, say) becomes its text rather than a 500.
    text = json.dumps(spec, default=str)

    def openapi_document() -> Response:
        return Response(200, Headers({"Content-Type": "application/json"}), text)

    return openapi_document


def _docs_handler(spec: dict[str, Any]) -> Any:
    def swagger_ui() -> Response:
        return docs_page(spec)

    return swagger_ui


def _get_patterns(app: Robyn) -> set[str]:
    return {
        join(prefix, route.pattern)
        for router, prefix in app.walk()
        for route in router.http_routes
        if route.method == "GET"
    }


def _what(path: str) -> str:
    return "document" if path == DOCUMENT_PATH else "docs page (Swagger UI)"

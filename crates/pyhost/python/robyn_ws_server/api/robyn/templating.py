"""``robyn.templating``: Jinja2 templates rendered into responses. Jinja2 is the app's own
dependency: it is imported from the app's environment when a ``JinjaTemplate`` is made."""

from __future__ import annotations

import functools
import importlib
import inspect
import os
from abc import ABC, abstractmethod
from typing import Any

from robyn._headers import Headers
from robyn._response import Response


class TemplateInterface(ABC):
    """A template engine."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    @abstractmethod
    def render_template(self, *args: Any, **kwargs: Any) -> Response: ...


class JinjaTemplate(TemplateInterface):
    """The templates of ``directory``, HTML and XML ones autoescaped."""

    def __init__(self, directory: str, encoding: str = "utf-8", followlinks: bool = False) -> None:
        try:
            # Through importlib: the package (and its type checking) does not depend on it.
            jinja2 = importlib.import_module("jinja2")
        except ImportError as error:
            raise ImportError(
                "robyn.templating.JinjaTemplate needs Jinja2, which is not installed where the app runs: "
                "pip install jinja2 (into the app's virtualenv)"
            ) from error
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(searchpath=directory, encoding=encoding, followlinks=followlinks),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml"), default=True),
        )

    def render_template(self, template_name: str, **kwargs: Any) -> Response:
        rendered = self.env.get_template(template_name).render(**kwargs)
        return Response(200, Headers({"Content-Type": "text/html; charset=utf-8"}), rendered)


@functools.cache
def _engine(engine: type[TemplateInterface], directory: str) -> TemplateInterface:
    return engine(directory)


def render(
    template_name: str,
    *,
    templates_dir: str = "templates",
    template_engine: type[TemplateInterface] = JinjaTemplate,
    **kwargs: Any,
) -> Response:
    """Renders ``template_name`` from ``templates_dir``, taken relative to the calling file
    when it is not absolute."""
    if not os.path.isabs(templates_dir):
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        try:
            caller_file = caller.f_globals.get("__file__") if caller is not None else None
        finally:
            del frame, caller
        base = os.path.dirname(os.path.abspath(caller_file)) if caller_file else os.getcwd()
        templates_dir = os.path.join(base, templates_dir)
    return _engine(template_engine, templates_dir).render_template(template_name, **kwargs)


__all__ = ["JinjaTemplate", "TemplateInterface", "render"]

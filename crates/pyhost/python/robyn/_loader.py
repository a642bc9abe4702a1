"""Imports the user's module and finds its ``Robyn`` app, turning every way this can go wrong
into one sentence saying what to do (plus the traceback, where the user's code raised)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import TYPE_CHECKING

from robyn import _app
from robyn._app import Robyn
from robyn._tracebacks import one_line, user_traceback

if TYPE_CHECKING:
    from robyn._runtime import Runtime


class AppLoadError(Exception):
    """Start-up cannot go on. ``details`` is the traceback to show above the message, if any."""

    def __init__(self, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


def load(target: str, app_dir: str) -> Runtime:
    """``target`` is ``module``, ``module:attr``, ``path/to/file.py`` or ``path/to/file.py:attr``."""
    module_name, _, attr = target.partition(":")
    if module_name.endswith(".py") or os.sep in module_name:
        path = os.path.abspath(os.path.join(app_dir, module_name))
        if not os.path.isfile(path):
            raise AppLoadError(f"no such file: {path}")
        app_dir, module_name = os.path.dirname(path), os.path.splitext(os.path.basename(path))[0]
    if not module_name:
        raise AppLoadError(f"--app {target!r} names no module: use module, module:attr or path/to/app.py")
    sys.path.insert(0, os.path.abspath(app_dir))
    module = _import(module_name, app_dir)
    app = _find_app(module, module_name, attr)
    # Imported here, not with this module: it needs `robyn._native`, which only the server has
    # (and which the server imported already, installing the log forwarding).
    from robyn._runtime import Runtime

    return Runtime(app)


def _import(module_name: str, app_dir: str) -> object:
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        spec = None
    except Exception as error:
        raise AppLoadError(f"could not import {module_name!r}: {one_line(error)}", user_traceback(error)) from error
    if spec is None:
        raise AppLoadError(
            f"no module named {module_name!r} in {os.path.abspath(app_dir)}: "
            "run from the directory that holds it, or pass --app-dir"
        )
    if spec.origin and os.path.isfile(spec.origin):
        # As under `python app.py`, the app's own directory is importable (sibling modules).
        sys.path.insert(1, os.path.dirname(os.path.abspath(spec.origin)))
    try:
        return importlib.import_module(module_name)
    except SyntaxError as error:
        where = f"{error.filename}, line {error.lineno}" if error.filename else module_name
        raise AppLoadError(f"syntax error in {where}: {error.msg}", user_traceback(error)) from error
    except BaseException as error:  # SystemExit and friends from module code are errors here too.
        raise AppLoadError(f"importing {module_name!r} raised {one_line(error)}", user_traceback(error)) from error


def _find_app(module: object, module_name: str, attr: str) -> Robyn:
    if attr:
        app = getattr(module, attr, None)
        if app is None:
            raise AppLoadError(f"module {module_name!r} has no attribute {attr!r}")
        if not isinstance(app, Robyn):
            raise AppLoadError(f"{module_name}:{attr} is {_article(type(app).__name__)}, not a Robyn app")
        return app
    named = {id(value): name for name, value in vars(module).items() if isinstance(value, Robyn)}
    if len(named) == 1:
        return next(value for value in vars(module).values() if isinstance(value, Robyn))
    if len(named) > 1:
        names = ", ".join(sorted(named.values()))
        raise AppLoadError(
            f"module {module_name!r} defines several Robyn apps ({names}): name one with --app {module_name}:NAME"
        )
    if len(_app.created) == 1:
        return _app.created[0]
    raise AppLoadError(f"module {module_name!r} defines no Robyn app: create one with `app = Robyn(__file__)`")


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"

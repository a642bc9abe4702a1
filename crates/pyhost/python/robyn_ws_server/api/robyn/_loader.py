"""Runs the user's module as ``python app.py`` would and finds its ``Robyn`` app, turning every
way this can go wrong into one sentence saying what to do (plus the traceback, where the
user's code raised). The server serves the app when the module calls ``app.start()``, which
returns after shutdown, so code after it runs then; a module that never calls it is served
once it has run."""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

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


class ServeFailed(BaseException):
    """The server could not serve (say, its port is taken). Raised through the app's own code
    from ``app.start()``, so that code cannot take it for one of its own errors."""


def run(target: str, app_dir: str, serve: Callable[[Runtime], None]) -> None:
    """``target`` is ``module``, ``module:attr``, ``path/to/file.py`` or ``path/to/file.py:attr``;
    ``serve`` runs the server on an app and returns after shutdown."""
    if _app.started_here is not None:
        # `app.start()` in a plain `python app.py` runs the server: the module has run already.
        serve(_runtime(_app.started_here))
        return
    module_name, _, attr = target.partition(":")
    path = None
    if module_name.endswith(".py") or os.sep in module_name:
        path = os.path.abspath(os.path.join(app_dir, module_name))
        if not os.path.isfile(path):
            raise AppLoadError(f"no such file: {path}")
        app_dir, module_name = os.path.dirname(path), os.path.splitext(os.path.basename(path))[0]
    if not module_name:
        raise AppLoadError(f"--app {target!r} names no module: use module, module:attr or path/to/app.py")
    sys.path.insert(0, os.path.abspath(app_dir))
    if path is None:
        path = _locate(module_name, app_dir)
    handover = _Handover(serve, module_name, attr)
    _app.on_start = handover
    try:
        namespace = _execute(module_name, path)
    finally:
        _app.on_start = None
    if not handover.served:
        serve(_runtime(_find_app(SimpleNamespace(**namespace), module_name, attr)))


class _Handover:
    """What ``app.start()`` does while the module runs: serve that app, once; or, when
    ``--app module:attr`` names one, the app of that name (an error if there is none)."""

    def __init__(self, serve: Callable[[Runtime], None], module_name: str, attr: str) -> None:
        self._serve = serve
        self._module_name = module_name
        self._attr = attr
        self.served = False

    def __call__(self, app: Robyn) -> None:
        if self.served:
            return
        if self._attr:
            # The module as it has run so far (runpy puts it in sys.modules while it runs).
            running = sys.modules.get("__main__")
            app = _find_app(running, self._module_name, self._attr)
        self.served = True
        self._serve(_runtime(app))


def _runtime(app: Robyn) -> Runtime:
    # Imported here, not with this module: it needs `robyn._native`, which only the server has
    # (and which the server imported already, installing the log forwarding).
    from robyn._runtime import Runtime

    return Runtime(app)


def _locate(module_name: str, app_dir: str) -> str:
    """The file of a module name, found as `import` would find it."""
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        spec = None
    except Exception as error:
        raise AppLoadError(f"could not import {module_name!r}: {one_line(error)}", user_traceback(error)) from error
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise AppLoadError(
            f"no module named {module_name!r} in {os.path.abspath(app_dir)}: "
            "run from the directory that holds it, or pass --app-dir"
        )
    return spec.origin


def _execute(module_name: str, path: str) -> dict[str, Any]:
    """Runs the module as ``__main__`` with ``sys.argv`` holding just its path; returns what it
    defined."""
    # As under `python app.py`, the app's own directory is importable (sibling modules).
    sys.path.insert(1, os.path.dirname(path))
    sys.argv = [path]
    try:
        if os.path.basename(path) == "__init__.py" or "." in module_name:
            return runpy.run_module(module_name, run_name="__main__", alter_sys=True)
        return runpy.run_path(path, run_name="__main__")
    except (ServeFailed, AppLoadError):
        raise
    except SyntaxError as error:
        where = f"{error.filename}, line {error.lineno}" if error.filename else module_name
        raise AppLoadError(f"syntax error in {where}: {error.msg}", user_traceback(error)) from error
    except BaseException as error:  # SystemExit and friends from module code are errors here too.
        raise AppLoadError(f"running {module_name!r} raised {one_line(error)}", user_traceback(error)) from error


def _find_app(module: object, module_name: str, attr: str) -> Robyn:
    if attr:
        app = getattr(module, attr, None)
        if app is None:
            apps = sorted(name for name, value in vars(module).items() if isinstance(value, Robyn))
            found = f"its Robyn apps: {', '.join(apps)}" if apps else "it defines no Robyn app"
            raise AppLoadError(f"module {module_name!r} has no attribute {attr!r} ({found})")
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

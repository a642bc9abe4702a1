"""Makes ``import robyn`` work in a plain ``python app.py`` when Robyn itself is not installed:
the wheel's ``robyn_ws_server.pth`` imports this module at interpreter start-up, and it puts a
finder on ``sys.meta_path`` that answers for ``robyn`` with this package's own copy
(``robyn_ws_server/api/robyn``, the same sources the server embeds).

Why this is safe:

- It never shadows anything. Asked for ``robyn``, the finder first asks every other finder on
  ``sys.meta_path`` (``sys.path``: site-packages, the script's folder, ``.pth`` path entries;
  editable installs' own finders) exactly as the import would have, and returns what they
  find. Only when none of them has a ``robyn`` (or only a stray folder without
  ``__init__.py``, which would import as an empty namespace package) does it serve ours. So an
  installed Robyn 0.88.0 (or any other distribution with a top-level ``robyn``, or a
  ``robyn.py`` beside the app) keeps its name, and the app then runs on it.
- It costs next to nothing at start-up: this module imports only ``os`` and ``sys``, which
  the interpreter has loaded before ``site`` runs ``.pth`` files, and does one list
  insertion (tests/test_python_app.py checks that start-up loads nothing else: ours, and
  ``__future__`` for the package's ``__init__``). The finder works only
  when ``robyn`` itself is imported, once per process, and then does no more than that
  import would have done anyway; every other name returns at the first comparison.
- Inside the server (``robyn-ws-server --app ...``) the server's own finder sits in front of
  this one and serves its embedded copy, as before.
"""

from __future__ import annotations

import os
import sys

# Only what the interpreter has loaded before `site` runs (`typing`, `pathlib` and even
# `importlib.machinery` are each a measurable share of a bare start-up).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

_NAME = "robyn"
# The folder holding this package's `robyn/`; a string, as sys.path entries are.
_API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api")


class RobynFinder:
    """A ``sys.meta_path`` finder for the top-level name ``robyn`` only; its submodules are
    found through the package's ``__path__`` by the ordinary path finder."""

    @classmethod
    def find_spec(cls, fullname: str, path: Any = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != _NAME:
            return None
        for finder in sys.meta_path:
            if finder is cls or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin is not None:
                return spec  # another distribution (or the app's own folder) provides `robyn`
        ours: ModuleSpec | None = _path_finder().find_spec(fullname, [_API])
        return ours

    @classmethod
    def invalidate_caches(cls) -> None:
        """Nothing cached here (``importlib.invalidate_caches`` calls every finder's)."""


def install() -> None:
    """Puts the finder in front of the path finder (once), so that it can tell an installed
    ``robyn`` from a stray namespace folder before the path finder settles on the latter."""
    if RobynFinder in sys.meta_path:
        return
    path_finder = _path_finder()
    position = sys.meta_path.index(path_finder) if path_finder in sys.meta_path else len(sys.meta_path)
    sys.meta_path.insert(position, RobynFinder)


def _path_finder() -> Any:
    """``importlib.machinery.PathFinder``, taken from where the interpreter keeps it rather
    than imported."""
    return sys.modules["_frozen_importlib_external"].PathFinder


install()

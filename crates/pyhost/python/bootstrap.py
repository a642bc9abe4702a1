"""Run once by the server before anything else is imported: puts the embedded ``robyn``
package ahead of everything on ``sys.path``."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import CodeType, ModuleType

ROOT = "robyn"


class EmbeddedPackage(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Serves ``robyn`` and ``robyn.*`` from sources compiled into the server binary."""

    def __init__(self, sources: dict[str, str]) -> None:
        self._sources = sources

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != ROOT and not fullname.startswith(ROOT + "."):
            return None
        if fullname not in self._sources:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: robyn-ws-server's robyn package provides Robyn 0.88's app API "
                f"({', '.join(sorted(self._sources))}), not the rest of Robyn",
                name=fullname,
            )
        return importlib.util.spec_from_loader(
            fullname, self, origin=self._filename(fullname), is_package=fullname == ROOT
        )

    def is_package(self, fullname: str) -> bool:
        return fullname == ROOT

    def get_source(self, fullname: str) -> str:
        return self._sources[fullname]

    def get_code(self, fullname: str) -> CodeType:
        return compile(self._sources[fullname], self._filename(fullname), "exec", dont_inherit=True)

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = self._filename(module.__name__)
        exec(self.get_code(module.__name__), module.__dict__)

    @staticmethod
    def _filename(fullname: str) -> str:
        # Not a real path: tracebacks still show the source lines, through `get_source`.
        relative = "robyn/__init__.py" if fullname == ROOT else fullname.replace(".", "/") + ".py"
        return f"robyn-ws-server/{relative}"


def install(sources: dict[str, str], native: ModuleType) -> None:
    sys.argv = ["robyn-ws-server"]
    sys.modules["robyn._native"] = native
    sys.meta_path.insert(0, EmbeddedPackage(sources))

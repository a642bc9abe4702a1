"""Finding the user's app (robyn/_loader.py): every way it goes wrong is one sentence saying
what to do, with the traceback where the user's code raised. Only the last step, building the
runtime, needs the server, so the loader runs here on modules written into a scratch folder."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from robyn import Robyn, _app
from robyn._loader import AppLoadError, _find_app, run


@pytest.fixture(autouse=True)
def isolated() -> Iterator[None]:
    """`run` puts the app's folder on sys.path and runs it; each test starts afresh."""
    path, modules, created, argv = list(sys.path), set(sys.modules), list(_app.created), list(sys.argv)
    yield
    sys.path[:] = path
    sys.argv[:] = argv
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    _app.created[:] = created


def write(folder: Path, relative: str, source: str) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    importlib.invalidate_caches()
    return path


def never_served(runtime: object) -> None:
    raise AssertionError("these apps never get as far as being served")


def load_error(target: str, app_dir: Path) -> AppLoadError:
    with pytest.raises(AppLoadError) as raised:
        run(target, str(app_dir), never_served)
    return raised.value


def test_the_loader_imports_without_the_native_module() -> None:
    assert "robyn._loader" in sys.modules
    assert "robyn._native" not in sys.modules
    assert "robyn._runtime" not in sys.modules


# -- what the target names -------------------------------------------------------------------


def test_no_such_file(tmp_path: Path) -> None:
    error = load_error("missing.py", tmp_path)
    assert str(error) == f"no such file: {tmp_path / 'missing.py'}"
    assert error.details is None


def test_a_target_without_a_module(tmp_path: Path) -> None:
    error = load_error(":app", tmp_path)
    assert str(error) == "--app ':app' names no module: use module, module:attr or path/to/app.py"


def test_no_module_of_that_name(tmp_path: Path) -> None:
    error = load_error("loader_test_nowhere", tmp_path)
    assert str(error) == (
        f"no module named 'loader_test_nowhere' in {tmp_path}: run from the directory that holds it, or pass --app-dir"
    )
    assert error.details is None


def test_a_package_that_fails_while_its_module_is_looked_up(tmp_path: Path) -> None:
    write(tmp_path, "loader_test_pkg/__init__.py", "raise ValueError('bad settings')\n")
    error = load_error("loader_test_pkg.app", tmp_path)
    assert str(error) == "could not import 'loader_test_pkg.app': ValueError: bad settings"
    assert error.details is not None and "raise ValueError('bad settings')" in error.details


# -- importing the module --------------------------------------------------------------------


def test_a_syntax_error_says_where(tmp_path: Path) -> None:
    source = "from robyn import Robyn\n\napp = Robyn(__file__)\n\ndef broken(:\n    pass\n"
    path = write(tmp_path, "loader_test_syntax.py", source)
    with pytest.raises(SyntaxError) as python_says:
        compile(source, str(path), "exec")
    error = load_error("loader_test_syntax", tmp_path)
    assert str(error) == f"syntax error in {path}, line 5: {python_says.value.msg}"
    assert error.details is not None and "def broken(:" in error.details


@pytest.mark.parametrize(
    ("source", "message", "shown"),
    [
        ("settings = {}\nport = settings['port']\n", "raised KeyError: 'port'", "port = settings['port']"),
        (
            "import loader_test_not_installed\n",
            "raised ModuleNotFoundError: No module named 'loader_test_not_installed'",
            "import loader_test_not_installed",
        ),
        ("raise SystemExit(3)\n", "raised SystemExit: 3", "raise SystemExit(3)"),
        ("class Empty(Exception): ...\nraise Empty()\n", "raised Empty", "raise Empty()"),
    ],
)
def test_an_exception_at_import_is_one_line_and_the_traceback(
    tmp_path: Path, source: str, message: str, shown: str
) -> None:
    write(tmp_path, "loader_test_raises.py", source)
    error = load_error("loader_test_raises", tmp_path)
    assert str(error) == f"running 'loader_test_raises' {message}"
    assert error.details is not None and shown in error.details


def test_a_file_path_imports_from_its_own_folder(tmp_path: Path) -> None:
    write(tmp_path, "sub/loader_test_file.py", "VALUE = 1\n")
    error = load_error("sub/loader_test_file.py", tmp_path)
    assert str(error) == "module 'loader_test_file' defines no Robyn app: create one with `app = Robyn(__file__)`"
    assert sys.path[0] == str(tmp_path / "sub")


# -- finding the app in it -------------------------------------------------------------------


def test_an_attribute_that_is_not_there(tmp_path: Path) -> None:
    write(tmp_path, "loader_test_attr.py", "from robyn import Robyn\n\napp = Robyn(__file__)\n")
    error = load_error("loader_test_attr:application", tmp_path)
    assert str(error) == "module 'loader_test_attr' has no attribute 'application' (its Robyn apps: app)"


def test_an_attribute_that_is_not_there_when_the_module_starts_its_app(tmp_path: Path) -> None:
    write(tmp_path, "loader_test_starts.py", "from robyn import Robyn\n\napp = Robyn(__file__)\napp.start()\n")
    error = load_error("loader_test_starts:application", tmp_path)
    assert str(error) == "module 'loader_test_starts' has no attribute 'application' (its Robyn apps: app)"


@pytest.mark.parametrize(("value", "described"), [("3", "an int"), ("'app'", "a str"), ("{}", "a dict")])
def test_an_attribute_that_is_not_an_app(tmp_path: Path, value: str, described: str) -> None:
    write(tmp_path, "loader_test_value.py", f"VALUE = {value}\n")
    error = load_error("loader_test_value:VALUE", tmp_path)
    assert str(error) == f"loader_test_value:VALUE is {described}, not a Robyn app"


def test_several_apps_must_be_told_apart(tmp_path: Path) -> None:
    source = "from robyn import Robyn\n\nsecond = Robyn(__file__)\nfirst = Robyn(__file__)\n"
    write(tmp_path, "loader_test_two.py", source)
    error = load_error("loader_test_two", tmp_path)
    assert str(error) == (
        "module 'loader_test_two' defines several Robyn apps (first, second): name one with --app loader_test_two:NAME"
    )


def test_no_app(tmp_path: Path) -> None:
    write(tmp_path, "loader_test_none.py", "from robyn import Robyn\n\nVALUE = 3\n")
    error = load_error("loader_test_none", tmp_path)
    assert str(error) == "module 'loader_test_none' defines no Robyn app: create one with `app = Robyn(__file__)`"
    assert error.details is None


class Module:
    """Stands in for an imported module: `_find_app` reads its attributes."""

    def __init__(self, **attributes: object) -> None:
        self.__dict__.update(attributes)


def test_the_one_app_is_found_under_any_name_and_any_number_of_names() -> None:
    app = Robyn(__file__)
    assert _find_app(Module(app=app), "main", "") is app
    assert _find_app(Module(app=app, application=app, VALUE=3), "main", "") is app
    assert _find_app(Module(server=app), "main", "server") is app


def test_an_app_built_by_a_factory_is_found_when_it_is_the_only_one() -> None:
    _app.created.clear()
    app = Robyn(__file__)
    assert _find_app(Module(make_app=lambda: app), "main", "") is app
    Robyn(__file__)
    with pytest.raises(AppLoadError, match="defines no Robyn app"):
        _find_app(Module(), "main", "")

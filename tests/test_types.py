"""The types users see: `mypy --strict` and pyright (basedpyright, in strict mode) over the
demo app (`pyapp/`) and every Python example of the README, as an app's own checker would see
them, with the `robyn` package's own annotations (py.typed) and nothing else. Checkers cannot
see the import hook that serves `robyn` at run time, so they are pointed at the folder that
holds it, as the README tells users to: MYPYPATH, and pyright's `extraPaths`. Both check as
the Python running the suite, whose site-packages (pydantic, websockets) the examples import
and which could not be read as an older one; the package itself is checked as 3.9 by
`mypy` in the lints. And each README example that is an app starts on the real server, as
annotated."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "crates" / "pyhost" / "python" / "robyn_ws_server" / "api"
PYAPP = ROOT / "pyapp"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


# Mistakes a checker must catch, so that a pass above means the types are there, not `Any`:
# each line marked `# wrong` is an error to both checkers.
MISTAKES = """\
from robyn import Request, Robyn, WebSocket

app = Robyn(__file__)


@app.websocket("/chat")
async def chat(websocket: WebSocket, page: int = 1) -> None:
    await websocket.send_text(f"page {page}")


@chat.on_connect
def hello(websocket: WebSocket) -> str:
    return websocket.id


@app.get("/items/:id")
def item(request: Request) -> str:
    return request.path_params["id"]


@app.startup_handler
async def ready() -> None:
    pass


hello(3)  # wrong: on_connect keeps the callback's own signature
chat.on_close(42)  # wrong: on_close takes a callable
item("not a request")  # wrong: @app.get keeps the handler's signature
ready().send_text  # wrong: startup_handler keeps the handler's type
"""


def readme_examples(folder: Path) -> list[Path]:
    """Each fenced python block of the README as a module of its own, and the mistakes."""
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    assert len(blocks) >= 8, "the README's Python examples were not found"
    folder.mkdir()
    paths = []
    for number, block in enumerate(blocks, 1):
        path = folder / f"readme_example_{number:02}.py"
        path.write_text(block)
        paths.append(path)
    (folder / "mistakes.py").write_text(MISTAKES)
    return paths


def wrong_lines() -> set[int]:
    return {number for number, line in enumerate(MISTAKES.splitlines(), 1) if "# wrong" in line}


def split(lines: list[tuple[str, int, str]]) -> tuple[set[int], list[str]]:
    """(lines of mistakes.py with errors, every other error)."""
    caught = {line for name, line, _ in lines if name == "mistakes.py"}
    others = [f"{name}:{line}: {text}" for name, line, text in lines if name != "mistakes.py"]
    return caught, others


def readme_apps() -> list[int]:
    """The numbers of the README's examples that are apps (the rest are clients)."""
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    return [number for number, block in enumerate(blocks, 1) if "= Robyn(__file__)" in block]


@pytest.mark.parametrize("number", readme_apps())
def test_each_readme_app_starts_as_annotated(start_server, tmp_path: Path, number: int) -> None:
    """The annotations the checkers want do not change what the server makes of an app."""
    path = readme_examples(tmp_path / "examples")[number - 1]
    # The examples' own imports (pydantic) are this suite's: its virtualenv, whatever else
    # is first on PATH.
    env = {"VIRTUAL_ENV": sys.prefix} if sys.prefix != sys.base_prefix else None
    server = start_server(str(path), cwd=tmp_path, env=env)
    assert server.stop() == 0, server.output
    assert "error" not in server.output.lower(), server.output


def tool(name: str) -> str:
    """A checker installed beside this Python (tests/requirements.txt), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r tests/requirements.txt")
    return found


def test_mypy_strict_passes_on_the_demo_app_and_the_readme(tmp_path: Path) -> None:
    examples = readme_examples(tmp_path / "examples")
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        # None of the repository's own configuration: what an app's checker starts from.
        "--config-file",
        str(tmp_path / "none.toml"),
        "--cache-dir",
        str(tmp_path / "cache"),
        str(PYAPP / "main.py"),
        *map(str, examples),
    ]
    (tmp_path / "none.toml").write_text("")
    env = {**os.environ, "MYPYPATH": str(API)}
    run = subprocess.run(
        [*command, str(tmp_path / "examples" / "mistakes.py")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    found = [
        (Path(match[1]).name, int(match[2]), match[3])
        for match in re.finditer(r"^(.+?\.py):(\d+): error: (.*)$", run.stdout, re.MULTILINE)
    ]
    caught, others = split(found)
    assert not others, "\n".join(others)
    assert caught == wrong_lines(), run.stdout


def test_pyright_strict_passes_on_the_demo_app_and_the_readme(tmp_path: Path) -> None:
    examples = readme_examples(tmp_path / "examples")
    config = {
        "include": [str(PYAPP), str(tmp_path / "examples")],
        # The robyn package, and the repository's root (pyapp/main.py imports pyapp.demo).
        "extraPaths": [str(API), str(ROOT)],
        "typeCheckingMode": "strict",
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    command = [tool("basedpyright"), "--project", str(tmp_path), "--pythonpath", sys.executable, "--outputjson"]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    report = json.loads(run.stdout)
    found = [
        (Path(d["file"]).name, d["range"]["start"]["line"] + 1, f"{d['message']} ({d.get('rule', '')})")
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    caught, others = split(found)
    assert not others, "\n".join(others)
    assert caught == wrong_lines(), found
    # The README's, the mistakes, and pyapp's files.
    pyapp_files = len(list(PYAPP.glob("*.py")))
    assert report["summary"]["filesAnalyzed"] == len(examples) + 1 + pyapp_files, report["summary"]

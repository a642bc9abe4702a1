"""Runs Robyn 0.88.0's own integration suite, unchanged, against robyn-ws-server.

Robyn's fixtures start their apps as `python3 base_routes.py` (and `python3 cors_app.py`) on
127.0.0.1:8080-8083. This runner copies the suite's integration_tests/ (and its LICENSE) to a
scratch folder, puts bin/python3 (a shim that execs our server on those two files, and the
real python3 on anything else) first on PATH, and runs pytest there on the chosen files: one
pytest run per --io-threads mode. deviations.toml lists the cases where Robyn is wrong and we
are right; they run as xfail(strict=True) through the deviations.py plugin. Counts per file
come from the JUnit XML that run writes.

    python tests/robyn_suite/run.py                      # its 31 files, --io-threads 0 and 1
    python tests/robyn_suite/run.py --io-threads 0 --files basic_routes web_sockets --failures
    python tests/robyn_suite/run.py --reference /path/to/venv/bin/python   # Robyn itself

tests/test_robyn_suite.py runs the 31 files in both modes as part of our pytest suite."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SHIM = HERE / "bin"
INI = HERE / "robyn_pytest.ini"
DEVIATIONS = HERE / "deviations.toml"
# The `robyn` package the server serves apps, as source.
API = ROOT / "crates" / "pyhost" / "python" / "robyn_ws_server" / "api"

# Robyn's file names (test_<name>.py): all but test_app.py, which tests Robyn's internals. In
# this order: test_openapi.py starts no server and uses the one an earlier file left running.
ALL_FILES = (
    "add_route_without_decorator",
    "basic_routes",
    "binary_output",
    "post_requests",
    "put_requests",
    "patch_requests",
    "delete_requests",
    "dependency_injection",
    "easy_access_params",
    "exception_handling",
    "json_types",
    "middlewares",
    "request_json",
    "split_request_params",
    "status_code",
    "subrouter",
    "base_url",
    "lifecycle_events",
    "web_sockets",
    "get_requests",
    "file_download",
    "static_files_with_api_routes",
    "sse",
    "binary_streaming",
    "authentication",
    "async_authentication",
    "sessions",
    "cors_preflight",
    "openapi",
    "multipart_data",
    "pydantic",
)

# Where Robyn's fixtures start their apps (conftest.py, test_lifecycle_events.py,
# test_cors_preflight.py).
PORTS = (8080, 8081, 8082, 8083)
# Each case's own body (pytest-timeout); a server's start is bounded by Robyn's fixture (15 s).
CASE_TIMEOUT = 15.0
# A whole run: past it pytest is interrupted (it still writes what ran) and the run fails.
DEADLINE = 300.0
OUTCOMES = ("passed", "failed", "error", "xfailed", "skipped")


# Where the project's machines keep the shared material, for a clone made anywhere else (CI
# clones into a folder of its own).
MACHINE_SHARED = Path("/work/shared")


def default_suite_dir() -> Path:
    """ROBYN_SUITE_DIR, or shared/robyn-0.88.0 beside the checkout (as on the developers'
    machines), or in the machine's shared folder (a clone elsewhere, as CI's)."""
    configured = os.environ.get("ROBYN_SUITE_DIR")
    if configured:
        return Path(configured)
    beside = ROOT.parent / "shared" / "robyn-0.88.0"
    if beside.is_dir():
        return beside
    return MACHINE_SHARED / "robyn-0.88.0"


def default_binary() -> Path:
    configured = os.environ.get("ROBYN_WS_SERVER")
    return Path(configured) if configured else ROOT / "target" / "release" / "robyn-ws-server"


def file_names(names: list[str]) -> list[str]:
    """`basic_routes`, `test_basic_routes` or `test_basic_routes.py` -> `basic_routes`."""
    out = []
    for name in names:
        bare = Path(name).name.removesuffix(".py").removeprefix("test_")
        if bare not in ALL_FILES:
            raise ValueError(f"{name}: not one of Robyn's files here ({', '.join(ALL_FILES)})")
        out.append(bare)
    return out


def busy_ports(ports: tuple[int, ...] = PORTS) -> list[int]:
    """The ports something accepts connections on (at 127.0.0.1, which a listener on 0.0.0.0
    answers too)."""
    busy = []
    for port in ports:
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    return busy


def who_listens(port: int) -> str:
    """`ss`'s line for a listening port, if ss is there (iproute2)."""
    if not shutil.which("ss"):
        return ""
    shown = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False)
    return " ".join(shown.stdout.split())


@dataclass
class Case:
    nodeid: str
    file: str  # Robyn's name: basic_routes
    outcome: str  # one of OUTCOMES
    message: str = ""  # the failure's first lines
    output: str = ""  # what the case's phases printed (the servers' output included)


@dataclass
class Run:
    label: str  # "--io-threads 0", or "Robyn itself"
    files: list[str]
    cases: list[Case] = field(default_factory=list)
    seconds: float = 0.0
    returncode: int | None = None
    problems: list[str] = field(default_factory=list)  # the harness's own findings
    unmatched: list[str] = field(default_factory=list)  # deviations naming no case
    out_dir: Path | None = None
    scratch: Path | None = None  # kept with --keep

    def counts(self) -> dict[str, Counter[str]]:
        per_file: dict[str, Counter[str]] = {name: Counter() for name in self.files}
        for case in self.cases:
            per_file.setdefault(case.file, Counter())[case.outcome] += 1
        return per_file

    def total(self) -> Counter[str]:
        return Counter(case.outcome for case in self.cases)

    def failures(self) -> list[Case]:
        return [case for case in self.cases if case.outcome in ("failed", "error")]

    @property
    def ok(self) -> bool:
        return not self.failures() and not self.problems and not self.unmatched and self.returncode == 0

    def headline(self) -> str:
        total = self.total()
        said = ", ".join(f"{total[outcome]} {outcome}" for outcome in OUTCOMES if total[outcome]) or "no case ran"
        return f"Robyn 0.88.0's integration suite, {self.label}: {said} in {self.seconds:.0f} s"

    def table(self) -> str:
        """Markdown: one row per file, then the total."""
        lines = [
            "| file | " + " | ".join(OUTCOMES) + " |",
            "|---|" + "---:|" * len(OUTCOMES),
        ]
        for name, count in self.counts().items():
            lines.append(f"| {name} | " + " | ".join(str(count[outcome]) for outcome in OUTCOMES) + " |")
        total = self.total()
        lines.append("| **total** | " + " | ".join(f"**{total[outcome]}**" for outcome in OUTCOMES) + " |")
        return "\n".join(lines)

    def server_errors(self) -> list[str]:
        """The distinct `error: ...` and panic lines the servers printed, most frequent first."""
        seen: Counter[str] = Counter()
        for case in self.cases:
            for line in case.output.splitlines():
                if line.startswith("error: ") or "panicked" in line or line.startswith("robyn-suite python3 shim:"):
                    seen[line[:300]] += 1
        return [f"{line} (x{count})" if count > 1 else line for line, count in seen.most_common()]

    def summary(self) -> str:
        parts = [self.headline(), "", self.table()]
        if self.problems or self.unmatched:
            parts += ["", *(f"- {problem}" for problem in self.problems)]
            parts += [f"- deviations.toml names no collected case: {nodeid}" for nodeid in self.unmatched]
        errors = self.server_errors()
        if errors:
            parts += ["", "What the servers said (error lines):", *(f"    {line}" for line in errors[:10])]
        return "\n".join(parts)

    def report(self, limit_lines: int = 2) -> str:
        """The summary, then every failing case by node id with the first lines of its failure."""
        parts = [self.summary()]
        failures = self.failures()
        if failures:
            parts += ["", f"{len(failures)} failing case(s):"]
            for case in failures:
                first = case.message.splitlines()[:limit_lines] or [""]
                parts.append(f"{case.outcome.upper()} {case.nodeid}: {first[0][:300]}")
                parts += [f"    {line[:300]}" for line in first[1:]]
        return "\n".join(parts)


def parse_junit(path: Path) -> list[Case]:
    """The cases of a JUnit XML file pytest wrote (junit_family = xunit1)."""
    cases = []
    # The file is pytest's own, written by the run this module started.
    for element in ElementTree.parse(path).getroot().iter("testcase"):  # noqa: S314
        classname, name = element.get("classname", ""), element.get("name", "")
        if not classname and not name:  # where an interrupted run stopped
            continue
        file = element.get("file")
        if not classname:  # a collection error: name is the module, dotted
            file = file or name.replace(".", "/") + ".py"
            nodeid = file
        else:
            module = (file or "").removesuffix(".py").replace("/", ".")
            if not file or not (classname == module or classname.startswith(module + ".")):
                module = classname
                file = classname.replace(".", "/") + ".py"
            inner = classname[len(module) :].lstrip(".").replace(".", "::")
            nodeid = "::".join(part for part in (file, inner, name) if part)
        failure, error, skipped = element.find("failure"), element.find("error"), element.find("skipped")
        if failure is not None:
            outcome, detail = "failed", failure
        elif error is not None:
            outcome, detail = "error", error
        elif skipped is not None:
            outcome, detail = ("xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"), skipped
        else:
            outcome, detail = "passed", None
        message = ""
        if detail is not None:
            message = detail.get("message") or (detail.text or "").strip()
        output = "\n".join(
            (part.text or "") for part in element if part.tag in ("system-out", "system-err") and part.text
        )
        robyn_name = Path(file).name.removesuffix(".py").removeprefix("test_")
        cases.append(Case(nodeid, robyn_name, outcome, message, output))
    return cases


def _copy_output(stream: TextIO, log: TextIO, echo: bool) -> None:
    for line in stream:
        log.write(line)
        log.flush()
        if echo:
            sys.stdout.write(line)
            sys.stdout.flush()


def _ours(pid: int, token: str) -> bool:
    """Whether pid is a process this run started (its environment carries the run's token)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"ROBYN_SUITE_RUN={token}".encode() in environ.split(b"\0")


def _kill_leftovers(pids_file: Path, token: str) -> list[int]:
    """SIGKILLs every app process this run started that is still running (with its process
    group: Robyn's fixtures start each in a session of its own). Returns their ids."""
    if not pids_file.exists():
        return []
    killed = []
    for pid in {int(line) for line in pids_file.read_text().split() if line.isdigit()}:
        if not _ours(pid, token):
            continue
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return sorted(killed)


def run_suite(
    *,
    io_threads: str | None,
    files: list[str],
    binary: Path | None = None,
    suite_dir: Path | None = None,
    out_dir: Path | None = None,
    reference_python: Path | None = None,
    deviations: Path | None = DEVIATIONS,
    case_timeout: float = CASE_TIMEOUT,
    deadline: float = DEADLINE,
    pytest_args: tuple[str, ...] = (),
    echo: bool = False,
    verbose_shim: bool = False,
    keep: bool = False,
) -> Run:
    """One pytest run of Robyn's suite on `files` (Robyn's names), against `binary` with
    `--io-threads io_threads`, or against Robyn itself under `reference_python`."""
    label = f"Robyn itself ({reference_python})" if reference_python else f"--io-threads {io_threads}"
    files = sorted(files)  # Robyn's own order (see the command below)
    run = Run(label=label, files=files)
    suite_dir = suite_dir or default_suite_dir()
    binary = (binary or default_binary()).resolve()
    if not (suite_dir / "integration_tests" / "conftest.py").is_file():
        run.problems.append(
            f"Robyn's suite is not at {suite_dir} (set ROBYN_SUITE_DIR to the folder holding its integration_tests/)"
        )
        return run
    if not reference_python and not os.access(binary, os.X_OK):
        run.problems.append(f"no server binary at {binary} (build it, or set ROBYN_WS_SERVER)")
        return run
    busy = busy_ports()
    if busy:
        who = "; ".join(filter(None, (who_listens(port) for port in busy)))
        run.problems.append(
            f"ports {', '.join(map(str, busy))} are in use before the run (Robyn's fixtures need 8080-8083 free)"
            + (f": {who}" if who else "")
        )
        return run
    if not reference_python and importlib.util.find_spec("jinja2") is None:
        run.problems.append(
            f"jinja2 is not installed in {sys.prefix}, whose packages the server's Python sees: "
            "base_routes.py needs it (pip install -r tests/requirements.txt)"
        )

    scratch = Path(tempfile.mkdtemp(prefix="robyn-suite-"))
    suite = scratch / "suite"
    out_dir = out_dir or ROOT / "out" / (
        "robyn-suite-reference" if reference_python else f"robyn-suite-io-threads-{io_threads}"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    run.out_dir = out_dir
    junit, log_path, unmatched_path = out_dir / "junit.xml", out_dir / "pytest.log", out_dir / "unmatched.json"
    for stale in (junit, log_path, unmatched_path):
        stale.unlink(missing_ok=True)
    shutil.copytree(
        suite_dir / "integration_tests", suite / "integration_tests", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(suite_dir / "LICENSE", suite / "LICENSE")
    (scratch / "tmp").mkdir()

    token = secrets.token_hex(8)
    pids_file = scratch / "pids"
    original_path = os.environ.get("PATH", os.defpath)
    # Robyn's own ROBYN_* settings (host, port...) would change what the suite tests; the
    # server's ROBYN_WS_SERVER_API_DIR (its robyn package read from source) is kept.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ROBYN_") or key == "ROBYN_WS_SERVER_API_DIR"
    }
    if reference_python:
        real_python3 = str(reference_python)
    else:
        others = os.pathsep.join(p for p in original_path.split(os.pathsep) if Path(p).resolve() != SHIM.resolve())
        real_python3 = shutil.which("python3", path=others) or sys.executable
    env.update(
        PATH=f"{SHIM}{os.pathsep}{original_path}",
        ROBYN_SUITE_PYTHON3=real_python3,
        ROBYN_SUITE_SERVER="" if reference_python else str(binary),
        ROBYN_SUITE_IO_THREADS=str(io_threads or 0),
        ROBYN_SUITE_PIDS=str(pids_file),
        ROBYN_SUITE_RUN=token,
        # integration_tests (which base_routes.py imports) from the scratch copy; the plugin;
        # for the test files that import robyn themselves (test_sse, test_openapi), our robyn
        # package's source (a reference run's python has Robyn's).
        PYTHONPATH=os.pathsep.join([str(suite), str(HERE), *([] if reference_python else [str(API)])]),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        # test_lifecycle_events' marker file, the apps' uploads: in the scratch folder.
        TMPDIR=str(scratch / "tmp"),
    )
    if verbose_shim:
        env["ROBYN_SUITE_VERBOSE"] = "1"
    if sys.prefix != sys.base_prefix:
        # The binary's embedded Python takes its packages (jinja2) from VIRTUAL_ENV, or from
        # the first virtualenv on PATH, which the shim's folder now hides.
        env["VIRTUAL_ENV"] = sys.prefix

    command = [
        # A reference run is Robyn's own setup: its python runs the tests and the apps.
        str(reference_python) if reference_python else sys.executable,
        "-m",
        "pytest",
        "-c",
        str(INI),
        "--rootdir",
        str(suite),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:asyncio",
        "-p",
        "deviations",
        f"--robyn-deviations={deviations or ''}",
        f"--robyn-unmatched={unmatched_path}",
        f"--junitxml={junit}",
        f"--timeout={case_timeout:g}",
        "-q",
        "-rfEX",
        "--tb=short",
        *pytest_args,
        # In Robyn's own order (`pytest integration_tests` collects its files by name): some
        # files start no server and use the one an earlier file's session fixture started.
        *(f"integration_tests/test_{name}.py" for name in files),
    ]
    started = time.monotonic()
    with log_path.open("w") as log:
        log.write(f"# {' '.join(command)}\n# in {suite}\n")
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=suite,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        if process.stdout is None:
            raise RuntimeError("pytest's output is not piped")
        copier = threading.Thread(target=_copy_output, args=(process.stdout, log, echo), daemon=True)
        copier.start()
        try:
            run.returncode = process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            run.problems.append(
                f"the run was still going after {deadline:.0f} s: interrupted; the cases after it did not run"
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)  # pytest still writes what ran
            try:
                run.returncode = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                run.returncode = process.wait()
        finally:
            killed = _kill_leftovers(pids_file, token)
            copier.join(timeout=10)
    run.seconds = time.monotonic() - started

    if killed:
        run.problems.append(f"{len(killed)} app process(es) outlived the run and were killed: {killed}")
    for _ in range(50):  # the ports free again once the killed servers are gone
        busy = busy_ports()
        if not busy:
            break
        time.sleep(0.1)
    else:
        run.problems.append(f"ports {', '.join(map(str, busy))} are still in use after the run")
    if junit.exists():
        run.cases = parse_junit(junit)
    else:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        run.problems.append(f"pytest wrote no JUnit XML (exit {run.returncode}); its last lines:\n{tail}")
    if unmatched_path.exists():
        run.unmatched = json.loads(unmatched_path.read_text())
    if run.returncode not in (0, 1) and not run.problems:
        run.problems.append(f"pytest exited {run.returncode} (0 or 1 expected); see {log_path}")
    ran = {case.file for case in run.cases}
    for name in files:
        if name not in ran:
            run.problems.append(f"test_{name}.py: no case ran")
    (out_dir / "summary.md").write_text(run.summary() + "\n")
    if keep:
        run.scratch = scratch
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--io-threads", nargs="+", choices=["0", "1"], default=["0", "1"], help="modes (one run each)")
    parser.add_argument(
        "--files", nargs="+", metavar="NAME", help="Robyn's files (basic_routes or test_basic_routes.py)"
    )
    parser.add_argument("--binary", type=Path, help="the server (default: ROBYN_WS_SERVER or target/release)")
    parser.add_argument(
        "--suite-dir",
        type=Path,
        help="the folder holding integration_tests/ (default: ROBYN_SUITE_DIR or ../shared/robyn-0.88.0)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        metavar="PYTHON",
        help="run against Robyn itself: a python with robyn==0.88.0 and jinja2, pytest, pytest-timeout, "
        "requests and websocket-client as pinned in tests/requirements.txt",
    )
    parser.add_argument("--no-deviations", action="store_true", help="no expected deviations (for --reference)")
    parser.add_argument("--timeout", type=float, default=CASE_TIMEOUT, help="seconds for each case's body")
    parser.add_argument("--deadline", type=float, default=DEADLINE, help="seconds for each run")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "out", help="JUnit XML, log and summary go to OUT/robyn-suite-*"
    )
    parser.add_argument("--failures", action="store_true", help="list every failing case with its first lines")
    parser.add_argument("--quiet", action="store_true", help="do not show pytest's own output as it runs")
    parser.add_argument("--verbose-shim", action="store_true", help="the python3 shim says what it runs")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest, after --")
    args = parser.parse_args(argv)
    files = file_names(args.files) if args.files else list(ALL_FILES)
    modes: list[str | None] = [None] if args.reference else list(args.io_threads)
    deviations = None if args.no_deviations else DEVIATIONS
    ok = True
    for mode in modes:
        run = run_suite(
            io_threads=mode,
            files=files,
            binary=args.binary,
            suite_dir=args.suite_dir,
            out_dir=args.out / ("robyn-suite-reference" if mode is None else f"robyn-suite-io-threads-{mode}"),
            reference_python=args.reference,
            deviations=deviations,
            case_timeout=args.timeout,
            deadline=args.deadline,
            pytest_args=tuple(args.pytest_args),
            echo=not args.quiet,
            verbose_shim=args.verbose_shim,
            keep=args.keep,
        )
        print()
        print(run.report() if args.failures else run.summary())
        print(f"\nJUnit XML and pytest's output: {run.out_dir}")
        if run.scratch:
            print(f"The scratch folder: {run.scratch}")
        print()
        ok = ok and run.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The TLS part of `just bench`: WebSocket echo over `wss://` and an HTTPS GET, on our server
and on Starlette on uvicorn and on granian, every server with the same certificate; and the
same two loads over plain TCP on our server, for what TLS costs it. Rounds interleaved across
servers as the other parts' are (bench/rounds.py). bench/run.py runs it after the
server-sent events load (or alone: `--part tls`) and puts what it measured into results.json
(under "tls"), which bench/report.py renders as docs/bench/tls.md and README's TLS table.

The certificate: a CA that trustme makes for the run, and one leaf from it for 127.0.0.1 and
localhost, ECDSA P-256 (trustme's default key), its key in PKCS#8 (the one key format granian
reads), all in a temporary folder removed after the run. Every server gets the same two files
(uvicorn `--ssl-certfile/--ssl-keyfile`, granian `--ssl-certificate/--ssl-keyfile`, ours
uvicorn's names) and is otherwise at its TLS defaults; both generators trust the CA.

Each round, per server: on a fresh server of the WebSocket app (bench/apps/robyn_app.py,
starlette_app.py, run as the WebSocket part runs them), ws-loadgen's two echo loads as the
WebSocket part has them (50 connections, one message in flight, then ten); then on a fresh
server of the HTTP app (robyn_http_app.py, starlette_http_app.py, run as the HTTP part runs
them) `GET /plaintext` (13 bytes) by Debian's wrk (one thread, 50 keep-alive connections), as
the HTTP part's plaintext load. Handshakes are made before what is measured: the figures are
TLS's record layer (encryption both ways), not its handshakes. What the handshakes negotiated
is checked: ws-loadgen reports its own, and `openssl s_client` (the OpenSSL wrk links, at its
defaults as wrk's) connects once to the HTTP server.
"""

from __future__ import annotations

import http.client
import re
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import http_loads
import report
import rounds
import run
from report import OURS, OURS_THREADED
from run import Peer, Running, Scale

UVICORN = "Starlette/uvicorn"
GRANIAN = "Starlette/granian"
PLAIN = " (plain)"
# The servers compared over TLS, as the WebSocket part (run.peers) and the HTTP part
# (http_loads.peers) name them; ours over plain TCP too.
OVER_TLS = [OURS, OURS_THREADED, UVICORN, GRANIAN]
OVER_PLAIN = [OURS, OURS_THREADED]
ECHO_LOADS = ["echo", "echo_in_flight_10"]
# The CPU figures that must settle (report.unsettled) before a run's figures stand.
SETTLING = [*(f"{key}_server_us_per_message" for key in ECHO_LOADS), "get_server_us_per_request"]
GET_PATH = "/plaintext"
GET_BODY = b"Hello, World!"


@dataclass(frozen=True)
class Certificate:
    """The files every server and generator is given."""

    ca: Path
    certfile: Path
    keyfile: Path

    def flags(self, server: str) -> list[str]:
        """The flags naming the certificate and its key, in each server's own names."""
        if server == GRANIAN:
            return ["--ssl-certificate", str(self.certfile), "--ssl-keyfile", str(self.keyfile)]
        return ["--ssl-certfile", str(self.certfile), "--ssl-keyfile", str(self.keyfile)]


def make_certificate(folder: Path) -> Certificate:
    """A CA and one ECDSA P-256 leaf for 127.0.0.1 and localhost (trustme's defaults)."""
    import trustme
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    certificate = Certificate(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(certificate.ca))
    certificate.certfile.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    # trustme writes the key in OpenSSL's traditional format; granian reads PKCS#8 only.
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    certificate.keyfile.write_bytes(pkcs8)
    return certificate


@dataclass(frozen=True)
class Setup:
    """One column of the report: a server over TLS or plain, its WebSocket and HTTP commands."""

    name: str
    server: str
    tls: bool
    websocket: Peer
    http: Peer


def setups(certificate: Certificate, chosen_names: list[str] | None, both_modes: bool) -> list[Setup]:
    websocket = {peer.name: peer for peer in run.peers()}
    # The HTTP part has no `--io-threads 1` column: it is ours with that flag.
    http = {peer.name: peer for peer in http_loads.peers()}
    ours = http[OURS]
    http[OURS_THREADED] = Peer(OURS_THREADED, [*ours.command, "--io-threads", "1"], ours.takes_port_flag)

    def with_tls(peer: Peer) -> Peer:
        return Peer(peer.name, [*peer.command, *certificate.flags(peer.name)], peer.takes_port_flag)

    def chosen(name: str) -> bool:
        return (not chosen_names or name in chosen_names) and (both_modes or name != OURS_THREADED)

    found = [Setup(name, name, True, with_tls(websocket[name]), with_tls(http[name])) for name in OVER_TLS]
    found += [Setup(name + PLAIN, name, False, websocket[name], http[name]) for name in OVER_PLAIN]
    return [setup for setup in found if chosen(setup.server)]


# --- one server's round ----------------------------------------------------------------------


def tls_round(setup: Setup, scale: Scale, certificate: Certificate) -> dict:
    """Both echo loads, then the GET, each on a fresh server: a figure per key, or {"missing": why}."""
    try:
        return echo_loads(setup, scale, certificate) | get_load(setup, scale, certificate)
    except RuntimeError as error:
        print(f"  {error}", flush=True)
        return {"missing": str(error)}


def echo_loads(setup: Setup, scale: Scale, certificate: Certificate) -> dict:
    server = Running(setup.websocket)
    try:
        if setup.tls:
            server.url = f"wss://127.0.0.1:{server.port}"
        result: dict = {}
        for key in ECHO_LOADS:
            load = run.generate(server, [*run.load_args(key, server, scale), "--ca-file", str(certificate.ca)])
            result |= run.figures(key, load)
            negotiated = load.report.get("tls")
            if setup.tls and not negotiated:
                raise RuntimeError(f"{setup.name}: ws-loadgen made no TLS handshake")
            if negotiated:
                result[f"{key}_negotiated"] = described(negotiated)
        return result
    finally:
        server.stop()


def described(negotiated: dict) -> str:
    """ws-loadgen's report of a handshake, as the report prints it."""
    protocol = (negotiated.get("protocol") or "?").replace("TLSv1_", "TLS 1.")
    return f"{protocol}, {negotiated.get('cipher_suite')}, {negotiated.get('key_exchange')}"


def get_load(setup: Setup, scale: Scale, certificate: Certificate) -> dict:
    server = Running(setup.http)
    try:
        pids = http_loads.settle(server)
        scheme = "https" if setup.tls else "http"
        wrong = wrong_answer(server.port, certificate if setup.tls else None)
        if wrong:
            raise RuntimeError(f"{setup.name}: GET {GET_PATH} {wrong}")
        result: dict = {}
        if setup.tls:
            result["get_negotiated"] = openssl_negotiated(server.port, certificate)
        url = f"{scheme}://127.0.0.1:{server.port}{GET_PATH}"
        if scale.http_warmup:
            http_loads.wrk(pids, url, 50, scale.http_warmup, post=False)
        load = http_loads.wrk(pids, url, 50, scale.http_seconds, post=False)
        return result | {
            "get": load.rate(),
            "get_server_us_per_request": load.server_us_per_request(),
            "get_server_cores": load.server_cpu_seconds / load.wall_seconds,
            "get_generator_cores": load.generator_cpu_seconds / load.wall_seconds,
            "get_other_cores": load.other_cpu_seconds / load.wall_seconds,
            "get_socket_errors": sum(
                load.report[error] for error in ("connect_errors", "read_errors", "write_errors", "timeouts")
            ),
        }
    finally:
        server.stop()


def wrong_answer(port: int, certificate: Certificate | None) -> str | None:
    """What is wrong with the server's answer to the GET (over TLS if `certificate`), or None."""
    if certificate:
        context = ssl.create_default_context(cafile=str(certificate.ca))
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=context, timeout=10
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", GET_PATH)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return repr(error)
    finally:
        connection.close()
    if response.status != 200 or body != GET_BODY:
        return f"answered {response.status}: {body[:120]!r}"
    return None


def openssl_negotiated(port: int, certificate: Certificate) -> str | None:
    """What OpenSSL's client at its defaults (wrk's library, which sets no TLS options of its
    own but for not verifying) negotiates with the server: `openssl s_client`'s protocol,
    cipher and key exchange. None without the `openssl` command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    command = [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(certificate.ca)]
    try:
        said = subprocess.run(command, input="", capture_output=True, text=True, timeout=10).stdout
    except subprocess.TimeoutExpired:
        return None
    # "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384", "Server Temp Key: X25519, 253 bits",
    # "Verify return code: 0 (ok)" (the session's own lines come only with its tickets).
    session = re.search(r"^New, (TLSv[\d.]+), Cipher is (\S+)", said, re.MULTILINE)
    if session is None:
        raise RuntimeError(f"openssl s_client made no TLS handshake with port {port}: {said[-300:]!r}")
    key = re.search(r"^Server Temp Key: ([^,\n]+)", said, re.MULTILINE)
    verified = re.search(r"^Verify return code: (.*)$", said, re.MULTILINE)
    if verified is None or not verified.group(1).startswith("0 "):
        raise RuntimeError(f"openssl s_client did not verify the certificate on port {port}: {said[-300:]!r}")
    protocol = session.group(1).replace("TLSv1.", "TLS 1.")
    return f"{protocol}, {session.group(2)}, {key.group(1) if key else '?'}"


# --- the rounds ----------------------------------------------------------------------------


def measure(chosen_names: list[str] | None, scale: Scale, quiet: bool) -> dict:
    """Every setup, rounds interleaved (bench/rounds.py); the certificate made for the run and
    removed after it. Returns what results.json keeps under "tls"."""
    http_loads.wrk_binary()
    with tempfile.TemporaryDirectory(prefix="robyn-ws-bench-tls-") as folder:
        certificate = make_certificate(Path(folder))
        chosen = setups(certificate, chosen_names, scale.tls_both_modes)
        measured = rounds.interleaved(
            chosen,
            scale.rounds,
            lambda setup, _index: tls_round(setup, scale, certificate),
            SETTLING,
            "TLS ",
            quiet,
            what="CPU per message and per request",
        )
    settings = server_settings(certificate_flags(chosen))
    keys = ("rounds", "echo_seconds", "warmup", "http_seconds", "http_warmup", "tls_both_modes")
    return {
        "machine": report.machine(),
        "scale": {key: value for key, value in asdict(scale).items() if key in keys},
        "generator": {
            "websocket": f"ws-loadgen (Rust, one thread; {locked('rustls')} on {locked('aws-lc-rs')})",
            "http": f"{http_loads.wrk_version()} (OpenSSL {openssl_version()})",
        },
        "settings": {setup.name: settings[setup.server] for setup in chosen if setup.tls},
        "rounds": measured,
        "unsettled": report.unsettled(measured, SETTLING),
    }


def certificate_flags(chosen: list[Setup]) -> dict[str, str]:
    """The flags naming the certificate, as each server was given them."""
    names = Certificate(Path("ca.pem"), Path("server.pem"), Path("server.key"))
    return {setup.server: " ".join(names.flags(setup.server)) for setup in chosen if setup.tls}


def server_settings(flags: dict[str, str]) -> dict[str, str]:
    """How each server ran over TLS, for the report: the WebSocket and HTTP parts' settings,
    the certificate's flags, and the TLS library each terminates TLS with. Runs in the
    benchmark's venv."""
    websocket, http = run.peer_settings(), http_loads.peer_settings()
    http[OURS_THREADED] = "the same with `--io-threads 1`"
    libraries = {
        OURS: f"{locked('rustls')} on {locked('aws-lc-rs')} (its defaults: TLS 1.2 and 1.3)",
        UVICORN: f"Python's `ssl` ({ssl.OPENSSL_VERSION}; uvicorn's defaults: `--ssl-version 17`, i.e. "
        "`PROTOCOL_TLS_SERVER`, TLS 1.2 and 1.3, OpenSSL's default ciphers)",
        GRANIAN: f"{granian_tls()} (granian's defaults: `--ssl-protocol-min tls1.3`)",
    }
    libraries[OURS_THREADED] = libraries[OURS]
    return {
        name: f"WebSocket loads: {websocket[name]}; HTTP load: {http[name]}; TLS: `{flags[name]}`, "
        f"terminated by {libraries[name]}"
        for name in flags
    }


def locked(crate: str) -> str:
    """A crate as Cargo.lock pins it for our server and ws-loadgen ("rustls 0.23.48")."""
    lock = (run.ROOT / "Cargo.lock").read_text()
    found = re.search(rf'^name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock, re.MULTILINE)
    return f"{crate} {found.group(1)}" if found else crate


def granian_tls() -> str:
    """The TLS crates built into granian's native library, as its strings name them."""
    import granian

    crate = re.compile(rb"(?<![\w-])(?:rustls|ring|aws-lc-rs)-\d+\.\d+\.\d+")
    found = set()
    for library in Path(granian.__file__).parent.glob("_granian*.so"):
        found |= {match.decode() for match in crate.findall(library.read_bytes())}
    crates = sorted(name for name in found if not name.startswith("rustls-"))
    rustls = sorted(name for name in found if name.startswith("rustls-"))
    if not rustls:
        return "its native library's TLS"
    return " ".join(rustls).replace("-", " ") + (" on " + ", ".join(crates).replace("-", " ") if crates else "")


def openssl_version() -> str:
    """The libssl wrk links: the system's, which `openssl version` names."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return "the system's"
    said = subprocess.run([openssl, "version"], capture_output=True, text=True, check=False).stdout.split()
    return said[1] if len(said) > 1 else "the system's"


if __name__ == "__main__":
    # Quick manual use: `.bench/venv/bin/python bench/tls_loads.py` measures one round at full
    # scale without waiting for a quiet machine (bench/run.py --part tls builds and installs first).
    import json
    import time

    started = time.monotonic()
    full = Scale(**{**asdict(run.FULL), "rounds": 1})
    print(json.dumps(measure(None, full, quiet=False)["rounds"], indent=1))
    print(f"{time.monotonic() - started:.0f} s")

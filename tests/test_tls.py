"""TLS on the main port (`--ssl-certfile` and the rest): HTTPS and wss:// on one port, in both
`--io-threads` modes, with certificates from a CA each test makes (trustme). What a client
sees of a good handshake, of a bad one, of an expired certificate and of one renewed with
SIGHUP under an open connection; client certificates; and that the server still serves
everyone else after every refusal."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import http.client
import signal
import socket
import ssl
from pathlib import Path

import pytest
import trustme
from conftest import TIMEOUT, Server, receive, run_to_exit
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

APP = "tls_app"
PASSWORD = "correct horse"


def issue(ca: trustme.CA, directory: Path, name: str, **validity: datetime.datetime) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost from `ca`: (certfile, keyfile)."""
    leaf = ca.issue_cert("127.0.0.1", "localhost", **validity)
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(keyfile))
    return certfile, keyfile


def trusting(*cas: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for ca in cas:
        ca.configure_trust(context)
    return context


def serve_tls(start_server, certfile: Path, keyfile: Path, *flags: str) -> Server:
    return start_server(APP, "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile), *flags)


def https_get(server: Server, context: ssl.SSLContext, path: str = "/") -> tuple[int, str]:
    connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def wss(server: Server, context: ssl.SSLContext, **kwargs):
    return connect(f"wss://127.0.0.1:{server.port}/echo", ssl=context, open_timeout=TIMEOUT, **kwargs)


async def echoes(server: Server, context: ssl.SSLContext, **kwargs) -> None:
    async with wss(server, context, **kwargs) as ws:
        assert await receive(ws) == "scheme wss"
        await ws.send("still there?")
        assert await receive(ws) == "still there?"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(start_server, tmp_path: Path, ca: trustme.CA) -> Server:
    return serve_tls(start_server, *issue(ca, tmp_path, "server"))


@pytest.mark.parametrize("compression", ["deflate", None], ids=["deflate", "plain"])
async def test_https_and_wss_share_the_port_and_the_app_sees_the_scheme(tls_server, ca, compression):
    assert https_get(tls_server, trusting(ca)) == (200, "scheme https")
    async with wss(tls_server, trusting(ca), compression=compression) as ws:
        assert ("permessage-deflate" in str(ws.response.headers)) == (compression == "deflate")
        assert await receive(ws) == "scheme wss"
        await ws.send("hello over TLS")
        assert await receive(ws) == "hello over TLS"
        # Larger than a TLS record and than the read-ahead buffer: many records, one message.
        large = bytes(range(256)) * 2048
        await ws.send(large)
        assert await receive(ws) == large
        burst = [f"message {n}" for n in range(500)]
        for message in burst:
            await ws.send(message)
        assert [await receive(ws) for _ in burst] == burst


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["1.2", "1.3"])
def test_tls_1_2_and_1_3_are_served_with_alpn_http_1_1(tls_server, ca, version):
    context = trusting(ca)
    context.minimum_version = context.maximum_version = version
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            assert tls.selected_alpn_protocol() == "http/1.1"
            tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            response = b""
            while chunk := tls.recv(65536):
                response += chunk
    assert response.startswith(b"HTTP/1.1 200")
    assert response.endswith(b"scheme https")


def client_hello() -> bytes:
    """The first flight of a real TLS client, which the test then sends only part of."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


@pytest.mark.parametrize("sent", ["nothing", "half a ClientHello"])
async def test_a_client_that_never_finishes_the_tls_handshake_is_cut_off(start_server, tmp_path, ca, sent):
    server = serve_tls(start_server, *issue(ca, tmp_path, "server"), "--handshake-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        if sent != "nothing":
            hello = client_hello()
            sock.sendall(hello[: len(hello) // 2])
        assert until_closed(sock) == b""
    await echoes(server, trusting(ca))


async def test_plain_http_or_garbage_instead_of_a_client_hello_gets_no_answer_in_clear(tls_server, ca):
    for garbage in (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", bytes(range(256)) * 4):
        with socket.create_connection(("127.0.0.1", tls_server.port), timeout=TIMEOUT) as sock:
            sock.sendall(garbage)
            answer = until_closed(sock)
        # At most a TLS alert record (content type 21), never an HTTP answer.
        assert answer == b"" or answer[0] == 21, answer[:40]
    await echoes(tls_server, trusting(ca))


async def test_an_expired_certificate_is_refused_by_the_client(start_server, tmp_path, ca):
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    expired = issue(ca, tmp_path, "expired", not_before=now - 30 * day, not_after=now - day)
    server = serve_tls(start_server, *expired)
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        https_get(server, trusting(ca))
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        async with wss(server, trusting(ca)):
            pass
    # A client told not to check still gets through: the server itself serves on.
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    await echoes(server, unchecked)


async def test_sighup_reloads_the_certificate_and_keeps_open_connections(start_server, tmp_path):
    first_ca, second_ca = trustme.CA(), trustme.CA()
    certfile, keyfile = issue(first_ca, tmp_path, "server")
    server = serve_tls(start_server, certfile, keyfile)
    async with wss(server, trusting(first_ca)) as open_before:
        assert await receive(open_before) == "scheme wss"
        renewed_cert, renewed_key = issue(second_ca, tmp_path, "renewed")
        renewed_cert.replace(certfile)
        renewed_key.replace(keyfile)
        server.process.send_signal(signal.SIGHUP)
        await server.until("TLS certificate reloaded")
        # The connection made with the old certificate goes on.
        await open_before.send("after the renewal")
        assert await receive(open_before) == "after the renewal"
        # New handshakes get the new certificate: trusted by the second CA only.
        await echoes(server, trusting(second_ca))
        with pytest.raises(ssl.SSLCertVerificationError):
            https_get(server, trusting(first_ca))

        # A broken file is reported, and the certificate in use stays.
        keyfile.write_text("not a key\n")
        server.process.send_signal(signal.SIGHUP)
        await server.until("previous certificate stays in use")
        await echoes(server, trusting(second_ca))
        await open_before.send("still here")
        assert await receive(open_before) == "still here"
    assert server.process.poll() is None


async def test_sighup_to_the_supervisor_reloads_every_worker(start_server, tmp_path):
    first_ca, second_ca = trustme.CA(), trustme.CA()
    certfile, keyfile = issue(first_ca, tmp_path, "server")
    server = serve_tls(start_server, certfile, keyfile, "--processes", "2")
    await echoes(server, trusting(first_ca))
    renewed_cert, renewed_key = issue(second_ca, tmp_path, "renewed")
    renewed_cert.replace(certfile)
    renewed_key.replace(keyfile)
    server.process.send_signal(signal.SIGHUP)
    await server.until("TLS certificate reloaded", count=2)
    # Connections land on either worker: every one of them has the new certificate.
    for _ in range(6):
        await echoes(server, trusting(second_ca))


def encrypted_key(keyfile: Path, password: str) -> Path:
    key = serialization.load_pem_private_key(keyfile.read_bytes(), password=None)
    encrypted = keyfile.with_suffix(".encrypted.key")
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode()),
        )
    )
    return encrypted


async def test_an_encrypted_key_is_read_with_its_password(start_server, tmp_path, ca):
    certfile, keyfile = issue(ca, tmp_path, "server")
    server = serve_tls(start_server, certfile, encrypted_key(keyfile, PASSWORD), "--ssl-keyfile-password", PASSWORD)
    await echoes(server, trusting(ca))


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--ssl-keyfile-password", "wrong"], "is --ssl-keyfile-password right?"),
        ([], "give its password with --ssl-keyfile-password"),
    ],
    ids=["wrong password", "no password"],
)
def test_an_encrypted_key_without_its_password_stops_the_start(binary, tmp_path, ca, flags, said):
    certfile, keyfile = issue(ca, tmp_path, "server")
    ended = run_to_exit(
        binary, "--app", APP, "--port", "0", "--ssl-certfile", str(certfile),
        "--ssl-keyfile", str(encrypted_key(keyfile, PASSWORD)), *flags,
    )  # fmt: skip
    assert ended.returncode == 1, ended.stderr
    assert said in ended.stderr
    assert PASSWORD not in ended.stderr


def test_files_that_do_not_load_stop_the_start_naming_the_file(binary, tmp_path, ca):
    certfile, keyfile = issue(ca, tmp_path, "server")
    _, other_key = issue(ca, tmp_path, "other")
    cases = [
        (["--ssl-certfile", str(tmp_path / "missing.pem"), "--ssl-keyfile", str(keyfile)], "missing.pem"),
        (["--ssl-certfile", str(keyfile), "--ssl-keyfile", str(keyfile)], "no certificate in it"),
        (["--ssl-certfile", str(certfile), "--ssl-keyfile", str(other_key)], "is the key the certificate's?"),
        (["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile), "--ssl-cert-reqs", "2"], "--ssl-ca-certs"),
    ]
    for flags, said in cases:
        ended = run_to_exit(binary, "--app", APP, "--port", "0", *flags)
        assert ended.returncode == 1, (flags, ended.stderr)
        assert said in ended.stderr, (flags, ended.stderr)
    usage = run_to_exit(binary, "--app", APP, "--ssl-certfile", str(certfile))
    assert usage.returncode == 2
    assert "--ssl-keyfile" in usage.stderr


@pytest.fixture
def client_ca() -> trustme.CA:
    return trustme.CA()


def with_client_certificate(context: ssl.SSLContext, ca: trustme.CA) -> ssl.SSLContext:
    ca.issue_cert("client@example.org").configure_cert(context)
    return context


async def refused(server: Server, context: ssl.SSLContext) -> None:
    """The handshake (TLS 1.3: the first read after it) fails for want of a good certificate."""
    with pytest.raises((ssl.SSLError, OSError, InvalidMessage)):
        async with wss(server, context) as ws:
            await receive(ws)


def serve_asking_for_client_certificates(start_server, tmp_path, ca, client_ca, reqs: str) -> Server:
    """A TLS server whose clients' certificates must come from `client_ca`, asked for as
    `--ssl-cert-reqs reqs` says."""
    client_cas = tmp_path / "client-ca.pem"
    client_ca.cert_pem.write_to_path(str(client_cas))
    return serve_tls(
        start_server, *issue(ca, tmp_path, "server"), "--ssl-ca-certs", str(client_cas), "--ssl-cert-reqs", reqs
    )


async def test_client_certificates_required(start_server, tmp_path, ca, client_ca):
    server = serve_asking_for_client_certificates(start_server, tmp_path, ca, client_ca, "required")
    await refused(server, trusting(ca))
    # A certificate from another CA is no better than none.
    await refused(server, with_client_certificate(trusting(ca), trustme.CA()))
    await echoes(server, with_client_certificate(trusting(ca), client_ca))


async def test_client_certificates_optional(start_server, tmp_path, ca, client_ca):
    server = serve_asking_for_client_certificates(start_server, tmp_path, ca, client_ca, "1")
    await echoes(server, trusting(ca))
    await echoes(server, with_client_certificate(trusting(ca), client_ca))
    await refused(server, with_client_certificate(trusting(ca), trustme.CA()))


def spki_hash(certfile: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: the base64 SHA-256 of the
    certificate's public key."""
    certificate = x509.load_pem_x509_certificate(certfile.read_bytes())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


PAGE_SOCKET = """
(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  const seen = [];
  ws.onmessage = ({ data }) => {
    seen.push(data);
    if (seen.length === 1) ws.send("from the page");
    else ws.close(1000, "done");
  };
  ws.onclose = ({ code, wasClean }) => resolve({ seen, code, wasClean, protocol: location.protocol });
})
"""


@pytest.mark.browser
async def test_chromium_reaches_the_page_and_its_socket_over_https_and_wss(tls_server, tmp_path):
    from chromium import CHROMIUM, CHROMIUM_FLAGS
    from playwright.async_api import async_playwright

    certfile = tmp_path / "server.pem"
    flags = [*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={spki_hash(certfile)}"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = await browser.new_page()
            response = await page.goto(f"https://127.0.0.1:{tls_server.port}/")
            assert response is not None and response.status == 200
            assert await page.text_content("body") == "scheme https"
            seen = await asyncio.wait_for(
                page.evaluate(PAGE_SOCKET, f"wss://127.0.0.1:{tls_server.port}/echo"), TIMEOUT
            )
        finally:
            await browser.close()
    assert seen == {"seen": ["scheme wss", "from the page"], "code": 1000, "wasClean": True, "protocol": "https:"}

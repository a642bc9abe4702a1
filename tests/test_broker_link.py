"""How the broker's link to Redis is made safe: a password in the `--broker` URL (never in the
log, nor in an error), and `rediss://` (TLS to Redis) with `--broker-ca`, against a real
redis-server started with `requirepass` and with its `tls-port`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cluster import clients
from conftest import run_to_exit
from redis_server import Redis, free_port
from test_broker import until_ready

PASSWORD = "s3cret-broker-password"


async def reach_each_other(first, second) -> None:
    """A broadcast on one instance reaches a client of the other (through Redis)."""
    await until_ready(first, 200)
    await until_ready(second, 200)
    (sender,) = await clients([first.url("/chat")])
    (listener,) = await clients([second.url("/chat")])
    await sender.command(op="broadcast", text="across")
    assert await listener.until(lambda texts: "across" in texts) == ["across"]
    await sender.close()
    await listener.close()


@pytest.fixture
def guarded_redis() -> Iterator[Redis]:
    server = Redis(extra=("--requirepass", PASSWORD)).start()
    yield server
    server.close()


@pytest.mark.parametrize("user", ["", "default"], ids=["password", "user and password"])
async def test_a_password_in_the_url_is_used_and_never_shown(start_server, guarded_redis, user):
    url = f"redis://{user}:{PASSWORD}@127.0.0.1:{guarded_redis.port}/0"
    first = start_server("cluster", "--broker", url, "--log-level", "debug")
    second = start_server("cluster", env={"ROBYN_BROKER": url})
    await reach_each_other(first, second)
    for server in (first, second):
        assert PASSWORD not in server.output


async def test_a_wrong_password_is_reported_without_showing_it(start_server, guarded_redis):
    wrong = "not-the-password"
    server = start_server("cluster", "--broker", f"redis://:{wrong}@127.0.0.1:{guarded_redis.port}/0")
    await server.until("cannot subscribe to the broker")
    assert "not connected" in await until_ready(server, 503)
    assert wrong not in server.output
    # Its own clients are served meanwhile.
    a1, a2 = await clients([server.url("/chat")] * 2)
    await a1.command(op="broadcast", text="alone")
    assert await a2.until(lambda texts: bool(texts)) == ["alone"]


def test_a_bad_url_is_an_error_that_hides_the_password(binary):
    ended = run_to_exit(binary, "--app", "cluster", "--broker", f"mongodb://:{PASSWORD}@127.0.0.1/0")
    assert ended.returncode == 1
    assert "--broker mongodb://:***@127.0.0.1/0" in ended.stderr
    assert PASSWORD not in ended.stderr


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[Redis, int, Path]]:
    """A redis-server taking TLS on a port of its own (beside its plain port, which the tests
    do not use), with a certificate from a CA made here: (server, TLS port, the CA's file)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    certfile, keyfile, ca_file = tmp_path / "redis.pem", tmp_path / "redis.key", tmp_path / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(certfile))
    leaf.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(ca_file))
    tls_port = free_port()
    server = Redis(
        extra=(
            "--tls-port", str(tls_port), "--tls-cert-file", str(certfile), "--tls-key-file", str(keyfile),
            "--tls-auth-clients", "no", "--requirepass", PASSWORD,
        )
    ).start()  # fmt: skip
    yield server, tls_port, ca_file
    server.close()


async def test_rediss_reaches_redis_over_tls_with_the_given_ca(start_server, tls_redis):
    _, tls_port, ca_file = tls_redis
    url = f"rediss://:{PASSWORD}@127.0.0.1:{tls_port}/0"
    first = start_server("cluster", "--broker", url, "--broker-ca", str(ca_file))
    second = start_server("cluster", "--broker", url, "--broker-ca", str(ca_file))
    await reach_each_other(first, second)
    assert PASSWORD not in first.output + second.output


async def test_rediss_with_a_certificate_from_another_ca_is_refused(start_server, tls_redis, tmp_path):
    _, tls_port, _ = tls_redis
    stranger = tmp_path / "stranger.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    url = f"rediss://:{PASSWORD}@127.0.0.1:{tls_port}/0"
    server = start_server("cluster", "--broker", url, "--broker-ca", str(stranger))
    await server.until("cannot subscribe to the broker")
    assert "not connected" in await until_ready(server, 503)
    # The system's CAs do not know the test's CA either.
    system = start_server("cluster", "--broker", url)
    await system.until("cannot subscribe to the broker")
    assert PASSWORD not in server.output + system.output


def test_broker_ca_without_tls_is_an_error(binary, tmp_path):
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    ended = run_to_exit(
        binary, "--app", "cluster", "--broker", f"redis://:{PASSWORD}@127.0.0.1/0", "--broker-ca", str(ca_file)
    )
    assert ended.returncode == 1
    assert "rediss://" in ended.stderr
    assert PASSWORD not in ended.stderr

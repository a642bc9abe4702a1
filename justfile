# Tasks for robyn-ws-server. `just` itself: `python3 -m pip install rust-just`.

set shell := ["bash", "-euo", "pipefail", "-c"]

binary := "target/release/robyn-ws-server"

# List the tasks.
default:
    @just --list

# Build the release binary.
build:
    cargo build --release --locked -p robyn-ws-server

# Serve an app (default: the examples in pyapp/main.py), e.g. `just run pyapp.main --port 9000`.
run app="pyapp.main" *flags: build
    {{binary}} --app {{app}} {{flags}}

# The Python tools the tests and linters use, in .venv.
venv:
    test -x .venv/bin/python || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt

# Every test: Rust unit tests, then the pytest suite against the built binary.
test: venv
    cargo test --release --locked
    .venv/bin/python -m pytest

# Formatting and lints, as CI runs them.
lint: venv
    cargo fmt --all -- --check
    cargo clippy --release --locked --all-targets -- -D warnings
    cargo clippy --release --locked -p robyn-ws-server-py --features pyo3/abi3-py39 -- -D warnings
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy

# The benchmark against Robyn, Starlette on uvicorn and on granian, socketify.py and picows
# (installed into .bench/venv; socketify needs Debian's libuv1, which it installs with apt if missing),
# WebSocket loads, then HTTP loads driven by Debian's wrk (installed with apt if missing), then
# 1,000 server-sent events subscribers, then wss:// echo and an HTTPS GET with one certificate for
# all (and ours over plain, for the cost of TLS): writes docs/bench/ and README's tables. `just bench
# --smoke` is a two-minute check; `just bench --part http` (or ws, sse, tls) measures one part;
# `just bench --report-only` renders docs/bench/ and the tables again from results.json.
# ROBYN_WS_BENCH_BUILT=path/to/target/release takes binaries built there instead of running cargo.
bench *flags: venv
    python3 bench/run.py {{flags}}

# Presence, send_to_user and history, our server alone: send_to_user and presence latency
# (p50, p99) in one process, across processes and across hosts, and fan-out with a history
# against without: writes docs/bench/presence.md (also part of `just bench`).
bench-presence *flags: venv
    cargo build --release --locked -p robyn-ws-server -p ws-loadgen
    .venv/bin/python bench/presence.py {{flags}}

# What a client can make the server hold, and what it keeps after a peak, per allocator
# (glibc, mimalloc, jemalloc; with and without trimming): writes docs/bench/memory.md.
# `just bench-memory --before path/to/older/robyn-ws-server` adds an earlier build.
bench-memory *flags:
    python3 bench/memory.py {{flags}}

# How long --reload takes: save -> new code serving, open WebSockets and event streams closed,
# old worker gone (100 WebSockets and 10 streams open; `--processes 2`, `--saves 20`...).
bench-reload *flags: build venv
    .venv/bin/python bench/reload.py {{flags}}

# robyn-ws-server in a container, serving pyapp.main on 0.0.0.0:8080.
# The builder makes the same wheel CI does (manylinux2014, abi3: any CPython from 3.9 on);
# the image installs it into a slim Python of its own choosing, as `pip install` would.
# tests/test_dockerfile.py runs this file's build, install and start commands.

FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain 1.95.0
ENV PATH=/root/.cargo/bin:$PATH
RUN pip install --no-cache-dir maturin==1.16.0 ziglang==0.17.1
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY crates crates
RUN maturin build --release --locked --zig --compatibility manylinux2014 --out dist

FROM python:3.13-slim-bookworm
COPY --from=builder /src/dist /tmp/dist
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
WORKDIR /app
COPY pyapp pyapp
ENV ROBYN_HOST=0.0.0.0 ROBYN_PORT=8080
EXPOSE 8080
USER nobody
CMD ["robyn-ws-server", "--app", "pyapp.main"]

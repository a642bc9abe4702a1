# robyn-ws-server in a container, serving pyapp.main on 0.0.0.0:8080.
# Both stages use the same Python image, so the binary runs against the libpython it was
# linked with. tests/test_dockerfile.py runs this file's build and start commands.

FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --profile minimal --default-toolchain 1.95.0
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN cargo build --release --locked -p robyn-ws-server

FROM python:3.11-slim-bookworm
COPY --from=builder /src/target/release/robyn-ws-server /usr/local/bin/robyn-ws-server
WORKDIR /app
COPY pyapp pyapp
ENV ROBYN_HOST=0.0.0.0 ROBYN_PORT=8080
EXPOSE 8080
USER nobody
CMD ["robyn-ws-server", "--app", "pyapp.main"]

# gust: scheduler, worker, webapi and the `gust` CLI in one image.
#
#   docker build -t gust:dev .
#       compiles the binaries in a Rust image (the default, last stage);
#       the cache mounts need BuildKit: the default since Docker 23; with
#       Debian's docker.io 20.10 and docker-compose 1.29, first
#       `export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1`.
#   docker build --target prebuilt -t gust:dev -f Dockerfile DIR
#       offline: takes gust-scheduler, gust-worker, gust-webapi and gust
#       already built on a Debian 12 (glibc 2.36) machine from the folder DIR
#       (the build context; keep only the four binaries in it), e.g. after
#       `cargo build --release`. Any builder works, the legacy one too.
#   docker run --rm gust:dev gust-scheduler migrate
#
# Stage order matters: the legacy builder builds every stage up to its
# target, so `prebuilt` comes before the Rust stage it must not need.

FROM debian:bookworm-slim AS runtime-base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates bash tini \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 gust \
 && useradd --system --uid 10001 --gid gust --home-dir /app --shell /usr/sbin/nologin gust \
 && mkdir -p /app/dags \
 && chown -R gust:gust /app
WORKDIR /app
ENV GUST__DAGS__FOLDER=/app/dags
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["gust-scheduler"]

FROM runtime-base AS prebuilt
COPY gust-scheduler gust-worker gust-webapi gust /usr/local/bin/
USER gust

FROM rust:1-bookworm AS builder
WORKDIR /src
# A workspace makes a "manifests first" layer awkward; instead copy everything
# and keep the cargo registry and target dir in BuildKit cache mounts.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        --bin gust-scheduler --bin gust-worker --bin gust-webapi --bin gust \
 && mkdir -p /out \
 && cp target/release/gust-scheduler target/release/gust-worker target/release/gust-webapi target/release/gust /out/

FROM runtime-base AS runtime
COPY --from=builder /out/gust-scheduler /out/gust-worker /out/gust-webapi /out/gust /usr/local/bin/
USER gust

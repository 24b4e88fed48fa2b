# syntax=docker/dockerfile:1
# gust: scheduler, worker and webapi in one image.
#   docker build -t gust:dev .
#   docker run --rm gust:dev gust-scheduler migrate
# Requires BuildKit (default in current Docker) for the cache mounts.

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

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates bash tini \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 gust \
 && useradd --system --uid 10001 --gid gust --home-dir /app --shell /usr/sbin/nologin gust \
 && mkdir -p /app/dags \
 && chown -R gust:gust /app
COPY --from=builder /out/gust-scheduler /out/gust-worker /out/gust-webapi /out/gust /usr/local/bin/
WORKDIR /app
USER gust
ENV GUST__DAGS__FOLDER=/app/dags
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["gust-scheduler"]

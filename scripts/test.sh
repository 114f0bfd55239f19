#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing
# (redis-server, which the cache tests spawn on free ports), so it works on a
# fresh machine and in CI (no prompts, no standard input).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    echo "need root to install packages: $*" >&2; return 1; fi
}

if ! command -v redis-server >/dev/null; then
  echo "==> installing redis-server"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
command -v redis-server >/dev/null || { echo "redis-server is still missing" >&2; exit 1; }

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

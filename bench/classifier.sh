#!/usr/bin/env bash
# Prompt-injection classifier figures: latency on one core (~100 and ~2,000
# characters), throughput on every core batched vs one window per call, and
# the memory the model adds. Fetches the model files first if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-models.sh
exec cargo bench --bench classifier -- "$@"

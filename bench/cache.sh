#!/usr/bin/env bash
# Verdict-cache figures: L1/L2 lookup time, miss vs L1 vs L2 end to end with a
# 200 ms scanner, and req/s with Redis up vs SIGSTOPped. Starts its own
# redis-server on a free port (needs redis-server on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench cache -- "$@"

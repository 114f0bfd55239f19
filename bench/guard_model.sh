#!/usr/bin/env bash
# guard_model figures with a 300 ms guard (the fake Ollama answering as Llama
# Guard 3): miss vs L1 vs L2 hit, guard calls saved over a ten-turn chat that
# resends its history, and a streamed reply judged on the way out. Starts its
# own redis-server on a free port (needs redis-server on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench guard_model -- "$@"

#!/usr/bin/env bash
# Streamed output through the guard vs direct: time to first byte and chunks
# per second for a 200-chunk reply, and the bytes held back for prose.
# Extra args go to the benchmark (--requests N).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench stream -- "$@"

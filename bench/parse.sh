#!/usr/bin/env bash
# Cost of reading requests as Ollama does (before/after, 1 and 50 messages)
# and of scanning the seams between fields.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench parse -- "$@"

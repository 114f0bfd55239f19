#!/usr/bin/env bash
# Scan cost per scanner and for the default input pipeline on a 4 KB prompt.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench scanners -- "$@"

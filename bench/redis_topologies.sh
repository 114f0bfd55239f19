#!/usr/bin/env bash
# L2 read latency on one redis-server, TLS (stunnel4), Sentinel and a
# three-node Cluster, interleaved in one run; then a Sentinel failover under
# load (failed requests, seconds until L2 is back). Starts its own processes
# on free ports (needs redis-server, redis-sentinel, stunnel4 and openssl:
# scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench redis_topologies -- "$@"

#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind. The count is
# the same for the same binary and inputs whatever else the machine is
# doing, so a before/after difference of a few percent is real where time
# figures on a shared machine drift by more (bench/nginx.sh).
# The proxy runs under callgrind with one serving thread, in front of the
# fixed upstream of bench/fixed_upstream.sh, default config. After a warm-up
# (verdicts cached) its counters are zeroed, N requests are sent (oha, 4
# connections), and the count is read. User-space instructions only: the
# kernel's share (the socket calls, a third of the time under load) and
# cache misses are not in them.
#   whole:  non-streamed /api/chat, N requests
#   stream: a 200-frame NDJSON reply, N/10 requests
#   pass:   GET /api/tags, a route nothing scans (the whole reply, relayed),
#           N requests: the proxy's own cost
#   paced:  the 200-frame reply with each frame its own chunk, 20 ms apart
#           (PACED_MS; slow enough for the proxy under valgrind to read each
#           on its own), N/100 requests, counted per chunk: the cost of one
#           streamed token as Ollama sends them
#   bench/instructions.sh [N] (default 2000)
# GUARD_BIN=path measures another build; BASELINE_BIN=path a second one.
# The hyper floor (bench/floor: hyper relaying, nothing else; see
# bench/nginx.sh) is counted the same way, in every mode: the part of
# a request's count the stack itself sets.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
PACED_MS=${PACED_MS:-20}
# shellcheck source=bench/fixed_upstream.sh
. bench/fixed_upstream.sh
need valgrind valgrind

send() { # PORT MODE REQUESTS; fails on any non-200 answer
  local req
  request "$1" "$2"
  "$oha" -n "$3" -c 4 --no-tui --output-format json "${req[@]}" |
    python3 -c 'import json, sys
codes = json.load(sys.stdin)["statusCodeDistribution"]
assert set(codes) == {"200"}, codes'
}

count() { # BIN MODE REQUESTS -> instructions per request
  local out listen pid served
  served=$(served "$2")
  out="$work/callgrind-$(basename "$1")-$2-$RANDOM"
  listen=$(free_port)
  local run=("$1") # the floor takes its two ports as arguments
  [ "$1" = "$floor" ] && run+=("$listen" "${port[up-$served]}")
  PROXY_WORKERS=1 PROXY_PORT=$listen PROXY_HOST=127.0.0.1 OLLAMA_URL=http://127.0.0.1:${port[up-$served]} \
    CACHE_BACKEND=memory RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" "${run[@]}" \
    >"$out.log" 2>&1 &
  pid=$!
  # Under valgrind the start takes a minute or two (the model files are
  # checksummed without the CPU's SHA instructions).
  local ready=(-X POST -d "$(body false)" "http://127.0.0.1:$listen/api/chat")
  [ "$2" = pass ] && ready=("http://127.0.0.1:$listen/api/tags")
  until curl -fsS -o /dev/null "${ready[@]}" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$out.log" >&2; exit 1; }
    sleep 1
  done
  local warm=300
  [ "$2" = paced ] && warm=4
  send "$listen" "$2" "$warm"
  callgrind_control -z "$pid" >/dev/null 2>&1
  send "$listen" "$2" "$3"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local per=$3
  [ "$2" = paced ] && per=$(($3 * 200))
  awk -v n="$per" '/^summary:/ {printf "%d", $2 / n}' "$out.1"
}

declare -A bin=([ollama-guard]=$guard [baseline]=${BASELINE_BIN:-})
printf '%-13s %22s %24s %22s %22s\n' build "whole (instr/request)" "stream (instr/request)" "pass (instr/request)" "paced (instr/chunk)"
bin[hyper floor]=$floor
for name in "hyper floor" ollama-guard baseline; do
  [ -n "${bin[$name]}" ] || continue
  whole=$(count "${bin[$name]}" whole "$n")
  stream=$(count "${bin[$name]}" stream $((n / 10)))
  pass=$(count "${bin[$name]}" pass "$n")
  paced=$(count "${bin[$name]}" paced $((n / 100)))
  printf '%-13s %22s %24s %22s %22s\n' "$name" "$whole" "$stream" "$pass" "$paced"
done

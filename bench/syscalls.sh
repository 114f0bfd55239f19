#!/usr/bin/env bash
# System calls per request, counted by strace. Like bench/instructions.sh's
# counts, they do not drift with the machine's load, and they show what
# instruction counts leave out: the proxy's reads, writes and wake-ups.
# Each proxy (the hyper floor, ollama-guard, and BASELINE_BIN when set) runs
# in front of the fixed upstream of bench/fixed_upstream.sh, default config;
# after a warm-up, `strace -c -f` is attached while oha sends N requests
# (4 connections), and the calls are printed per request:
#   whole: non-streamed /api/chat, N requests
#   stream: the 200-frame reply written at once, N/10 requests
#   paced: the 200-frame reply, each frame its own chunk 5 ms apart
#          (PACED_MS), N/100 requests, counted per chunk
#   bench/syscalls.sh [N] (default 2000)
# GUARD_BIN=path measures another build; BASELINE_BIN=path a second one.
# strace slows the proxy: the counts are per request, not a speed.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
PACED_MS=${PACED_MS:-5}
# shellcheck source=bench/fixed_upstream.sh
. bench/fixed_upstream.sh
need strace strace

count() { # BIN MODE REQUESTS -> "calls-per-unit top-calls"
  local listen pid tracer served out=$work/strace-$RANDOM
  served=$(served "$2")
  listen=$(free_port)
  if [ "$1" = "$floor" ]; then
    "$floor" "$listen" "${port[up-$served]}" >/dev/null 2>&1 &
  else
    PROXY_PORT=$listen PROXY_HOST=127.0.0.1 OLLAMA_URL=http://127.0.0.1:${port[up-$served]} \
      CACHE_BACKEND=memory RUST_LOG=warn "$1" >/dev/null 2>&1 &
  fi
  pid=$!; pids+=("$pid")
  until curl -fsS -o /dev/null -X POST -d "$(body false)" "http://127.0.0.1:$listen/api/chat" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "$1 did not start" >&2; exit 1; }
    sleep 0.3
  done
  local req
  request "$listen" "$2"
  "$oha" -n 20 -c 4 --no-tui "${req[@]}" >/dev/null
  strace -c -f -p "$pid" -o "$out" 2>/dev/null &
  tracer=$!
  sleep 1
  "$oha" -n "$3" -c 4 --no-tui "${req[@]}" >/dev/null
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
  kill "$pid"
  local per=$3
  [ "$2" = paced ] && per=$(($3 * 200))
  # strace -c's table: "% time, seconds, usecs/call, calls, [errors,] syscall".
  awk -v n="$per" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
      calls[$NF] = $4; total += $4 }
    END {
      top = ""
      for (c in calls) if (calls[c] / n >= 0.05) top = top sprintf(" %s %.2f", c, calls[c] / n)
      printf "%.2f%s", total / n, top }' "$out"
}

declare -A bin=([ollama-guard]=$guard [baseline]=${BASELINE_BIN:-})
bin[hyper floor]=$floor
printf '%-13s %-50s %-50s %s\n' build "whole (calls/request: total, then each)" "stream (calls/request)" "paced (calls/chunk)"
for name in "hyper floor" ollama-guard baseline; do
  [ -n "${bin[$name]}" ] || continue
  whole=$(count "${bin[$name]}" whole "$n")
  stream=$(count "${bin[$name]}" stream $((n / 10)))
  paced=$(count "${bin[$name]}" paced $((n / 100)))
  printf '%-13s %-50s %-50s %s\n' "$name" "$whole" "$stream" "$paced"
done

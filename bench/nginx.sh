#!/usr/bin/env bash
# ollama-guard against nginx, side by side in one run, the way issue 11
# measures it: the same upstream (an nginx worker answering /api/chat with a
# fixed Ollama reply, standing in for a very fast Ollama) reached directly,
# through nginx (1 worker, upstream keepalive, no scanning), through the
# hyper floor (bench/floor: hyper's server and client on ollama-guard's
# runtime layout and allocator, relaying and nothing else: the least a
# proxy built on this stack costs) and through ollama-guard (the default
# config, warm verdicts: every request repeats the prompt). oha with 32
# connections; rounds interleaved, medians printed.
#   whole:  non-streamed /api/chat: max requests/s, then p50 at a fixed 2,000 req/s
#   stream: a 200-chunk NDJSON reply: max requests/s x 200 = chunks/s
#   paced:  the same reply with each chunk written on its own, 2 ms apart
#           (PACED_MS), as Ollama sends tokens: the rate is the upstream's,
#           so what counts is each proxy's CPU time per chunk; the p50 time
#           of a stream shows that none holds it up (within the upstream's
#           timer, ~1 ms a chunk). nginx with proxy_buffering off, as it is
#           set in front of streaming LLMs.
#   pass:   GET /api/tags, a route nothing scans (relayed as it comes, the
#           same fixed reply): max requests/s; the cost of the proxy alone
#   CPU per request: the proxy's user + system time (/proc/PID/stat) over
#   the max-rate runs, divided by the requests served (nginx: its worker).
#   Less sensitive than requests/s to what else the machine is doing.
# Installs nginx (Debian) and oha (crates.io, into target/tools) when missing.
#   bench/nginx.sh [SECONDS_PER_ROUND] (default 10) [ROUNDS] (default 3)
# GUARD_BIN=path measures another ollama-guard binary (an older build);
# BASELINE_BIN=path measures a second build beside it, in the same rounds
# (before/after figures from one run, on a machine whose speed drifts).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
# shellcheck source=bench/fixed_upstream.sh
. bench/fixed_upstream.sh

targets=(up ng fl og)
[ -n "${BASELINE_BIN:-}" ] && targets+=(ob)
served=(whole stream paced) # the modes with an upstream of their own
for mode in "${served[@]}"; do
  for t in ng fl og ob; do port[$t-$mode]=$(free_port); done
done
proxies=""
for mode in "${served[@]}"; do
  buffering=""; [ "$mode" = paced ] && buffering="proxy_buffering off;"
  proxies+="upstream ollama_$mode { server 127.0.0.1:${port[up-$mode]}; keepalive 64; }
  server { listen 127.0.0.1:${port[ng-$mode]}; keepalive_requests 1000000;
    location / { proxy_pass http://ollama_$mode; proxy_http_version 1.1; proxy_set_header Connection \"\"; $buffering } }
  "
done
nginx_conf ng "$proxies"
"$nginx" -c "$work/ng/nginx.conf" -p "$work/ng" & pids+=($!)
declare -A proc # the process whose CPU time counts, by target and mode
declare -A bin=([og]=$guard [ob]=${BASELINE_BIN:-})
for mode in "${served[@]}"; do
  "$floor" "${port[fl-$mode]}" "${port[up-$mode]}" & pids+=($!)
  proc[fl-$mode]=$!
  for t in og ob; do
    [ -n "${bin[$t]}" ] || continue
    PROXY_PORT=${port[$t-$mode]} PROXY_HOST=127.0.0.1 OLLAMA_URL=http://127.0.0.1:${port[up-$mode]} \
      CACHE_BACKEND=memory RUST_LOG=warn "${bin[$t]}" >"$work/guard-$t-$mode.log" 2>&1 & pids+=($!)
    proc[$t-$mode]=$!
  done
done
for mode in "${served[@]}"; do
  stream=true; [ "$mode" = whole ] && stream=false
  for t in "${targets[@]}"; do
    until curl -fsS -o /dev/null -X POST "http://127.0.0.1:${port[$t-$mode]}/api/chat" -d "$(body $stream)" 2>/dev/null; do sleep 0.2; done
    curl -fsS -X POST -o "$work/answer" -w '%{time_starttransfer} %{time_total}\n' "http://127.0.0.1:${port[$t-$mode]}/api/chat" -d "$(body $stream)" >"$work/times"
    lines=$(wc -l <"$work/answer")
    [ "$mode" = whole ] || [ "$lines" -eq 200 ] || { echo "$t answered $lines lines, not 200" >&2; exit 1; }
    # A paced stream is passed on as it comes, not gathered first.
    read -r first total <"$work/times"
    [ "$mode" != paced ] || python3 -c "assert $first < $total / 4, ('${t}: the first chunk came with the last', $first, $total)"
  done
done
# nginx serves every mode from its one worker.
proc[ng-whole]=$(pgrep -P "$(cat "$work/ng/pid")")
proc[ng-stream]=${proc[ng-whole]}
proc[ng-paced]=${proc[ng-whole]}
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in ticks

load() { # PORT MODE [QPS] -> "rps p50_ms requests"; fails on any non-200 answer
  local extra=() req
  [ -n "${3:-}" ] && extra=(-q "$3")
  request "$1" "$2"
  "$oha" -z "${secs}s" -c 32 "${extra[@]}" --no-tui --output-format json "${req[@]}" |
    python3 -c 'import json, sys
d = json.load(sys.stdin)
codes = d["statusCodeDistribution"]
assert set(codes) == {"200"} and d["summary"]["successRate"] == 1.0, codes
print(round(d["summary"]["requestsPerSec"]), round(d["latencyPercentiles"]["p50"] * 1000, 3), codes["200"])'
}
maxload() { # TARGET MODE -> "rps us_cpu_per_request p50_ms" (CPU "-" for direct)
  local c0="" rps p50 n served
  served=$(served "$2")
  [ "$1" = up ] || c0=$(cpu "${proc[$1-$served]}")
  read -r rps p50 n <<<"$(load "${port[$1-$served]}" "$2")"
  if [ -z "$c0" ]; then echo "$rps - $p50"; else
    python3 -c "print($rps, round(($(cpu "${proc[$1-$served]}") - $c0) / $ticks / $n * 1e6, 1), $p50)"
  fi
}
declare -A res
declare -A names=([up]=direct [ng]=nginx [fl]="hyper floor" [og]=ollama-guard [ob]=baseline)
for round in $(seq "$rounds"); do
  for t in "${targets[@]}"; do
    read -r r cw _ <<<"$(maxload "$t" whole)"; res[$t-max]+=" $r"; res[$t-cw]+=" $cw"
    read -r _ l _ <<<"$(load "${port[$t-whole]}" whole 2000)"; res[$t-p50]+=" $l"
    read -r s cs _ <<<"$(maxload "$t" stream)"; res[$t-stream]+=" $s"; res[$t-cs]+=" $cs"
    read -r g cg _ <<<"$(maxload "$t" pass)"; res[$t-pass]+=" $g"; res[$t-cg]+=" $cg"
    read -r p cp pl <<<"$(maxload "$t" paced)"; res[$t-paced]+=" $p"; res[$t-pl]+=" $pl"
    [ "$cp" = - ] || cp=$(python3 -c "print(round($cp / 200, 2))")
    res[$t-cp]+=" $cp"
    echo "round $round  ${names[$t]}: $r req/s ($cw µs CPU each), p50 $l ms at 2k req/s, stream $((s * 200)) chunks/s ($cs µs CPU a stream), pass-through $g req/s ($cg µs CPU each), paced $((p * 200)) chunks/s ($cp µs CPU a chunk, p50 $pl ms a stream)"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A med
for t in "${targets[@]}"; do for k in max p50 stream cw cs pass cg paced cp pl; do med[$t-$k]=$(median <<<"${res[$t-$k]}"); done; done
echo
printf '%-13s %10s %14s %14s %15s %14s %15s %12s %14s\n' path "max req/s" "p50 @2k (ms)" "added p50" "stream chunk/s" "CPU µs/req" "CPU µs/stream" "pass req/s" "CPU µs/pass"
for t in "${targets[@]}"; do
  added=$(python3 -c "print(f'{${med[$t-p50]} - ${med[up-p50]}:+.3f}')")
  printf '%-13s %10s %14s %14s %15s %14s %15s %12s %14s\n' "${names[$t]}" "${med[$t-max]}" "${med[$t-p50]}" "$added" "$((med[$t-stream] * 200))" "${med[$t-cw]:--}" "${med[$t-cs]:--}" "${med[$t-pass]}" "${med[$t-cg]:--}"
done
echo
echo "paced stream (each chunk written on its own, ${PACED_MS:-2} ms apart):"
printf '%-13s %10s %18s %14s\n' path "chunks/s" "p50 a stream (ms)" "CPU µs/chunk"
for t in "${targets[@]}"; do
  printf '%-13s %10s %18s %14s\n' "${names[$t]}" "$((med[$t-paced] * 200))" "${med[$t-pl]}" "${med[$t-cp]:--}"
done
echo
for t in "${targets[@]}"; do
  case $t in up | ng) continue ;; esac
  python3 -c "print(f'${names[$t]} / nginx: max req/s {${med[$t-max]} / ${med[ng-max]}:.2f}x, stream chunks/s {${med[$t-stream]} / ${med[ng-stream]}:.2f}x, pass-through req/s {${med[$t-pass]} / ${med[ng-pass]}:.2f}x, CPU a paced chunk {${med[$t-cp]} / ${med[ng-cp]}:.2f}x')"
done

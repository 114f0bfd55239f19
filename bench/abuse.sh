#!/usr/bin/env bash
# The abuse cases of issue 11 against the release binary with the default
# config (Ollama need not run: these requests never reach it):
#   1. peak RSS of one 8.8 MB /api/chat of 240,000 tiny messages;
#   2. /health latency while two 1.5 MB prompts of `a@b.co ` are scanned;
#   3. /health latency while 60 MB vision requests (a base64 image) are read
#      and parsed, on one worker (PROXY_WORKERS=1: /health shares its thread).
# Prints RSS before and after, and /health p50/max during the scans. With the
# default config the classifier refuses such prompts at once (over
# max_windows); SCANNERS_INPUT='[{type: pii}, {type: secrets, mode: redact},
# {type: prompt_injection, use_model: false}]' makes the span scanners read
# all 1.5 MB each.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/fetch-models.sh >/dev/null
cargo build --release --locked --bin ollama-guard 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
PROXY_PORT=$port PROXY_HOST=127.0.0.1 OLLAMA_URL=http://127.0.0.1:9 CACHE_BACKEND=memory \
  SCANNERS_INPUT=${SCANNERS_INPUT:-} PROXY_WORKERS=${PROXY_WORKERS:-1} \
  target/release/ollama-guard >"$work/log" 2>&1 &
pid=$!
until curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; do sleep 0.1; done
# health_latency CALLS PAUSE: /health CALLS times, PAUSE s apart; prints p50 and max.
health_latency() {
  for _ in $(seq "$1"); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/health"
    sleep "$2"
  done | sort -n | awk '{a[NR]=$1} END {printf "   /health over %d calls: p50 %.1f ms, max %.1f ms\n", NR, a[int((NR+1)/2)]*1000, a[NR]*1000}'
}
rss() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$pid/status"; }
python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
msgs = [{"role": "user", "content": "hi"}] * 240_000
open(f"{work}/many.json", "w").write(json.dumps({"model": "m", "stream": False, "messages": msgs}))
text = "a@b.co " * (1_500_000 // 7)
import base64, os
image = base64.b64encode(os.urandom(45 * 1024 * 1024)).decode()
open(f"{work}/vision.json", "w").write(json.dumps({"model": "m", "stream": False, "messages": [{"role": "user", "content": "What is in this picture?", "images": [image]}]}))
open(f"{work}/emails.json", "w").write(json.dumps({"model": "m", "stream": False, "messages": [{"role": "user", "content": text}]}))
PY
echo "1. one $(du -h "$work/many.json" | cut -f1) /api/chat of 240,000 messages"
before=$(rss VmRSS)
code=$(curl -s -o "$work/out" -w '%{http_code}' "http://127.0.0.1:$port/api/chat" --data-binary "@$work/many.json")
echo "   status $code: $(head -c 160 "$work/out")"
echo "   RSS before ${before} kB, after $(rss VmRSS) kB, peak (VmHWM) $(rss VmHWM) kB; body $(stat -c %s "$work/many.json") bytes"
echo "2. /health while two 1.5 MB prompts of a@b.co are scanned"
prompts=()
for i in 1 2; do
  curl -s -o "$work/e$i" -w "   prompt $i: status %{http_code} in %{time_total} s\n" "http://127.0.0.1:$port/api/chat" --data-binary "@$work/emails.json" &
  prompts+=($!)
done
sleep 0.2
health_latency 20 0.05
wait "${prompts[@]}"
echo "   peak RSS (VmHWM) $(rss VmHWM) kB"
echo "3. /health while three $(du -h "$work/vision.json" | cut -f1) vision requests are read and parsed, one after another"
( for _ in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:$port/api/chat" --data-binary "@$work/vision.json"; done ) &
vision=$!
sleep 0.1
health_latency 40 0.02
wait "$vision"

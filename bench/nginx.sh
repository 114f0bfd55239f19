#!/usr/bin/env bash
# ollama-guard against nginx, side by side in one run: the same upstream (an
# nginx worker answering /api/chat with a fixed Ollama reply, standing in for
# a very fast Ollama), reached directly, through nginx (1 worker, upstream
# keepalive, no scanning) and through ollama-guard (the default config, warm
# verdicts: every request repeats the prompt). Non-streamed /api/chat, wrk
# with 2 threads and 32 connections, rounds interleaved. Prints requests/s,
# p50 latency, and the ratios to nginx. Installs nginx and wrk when missing.
#   bench/nginx.sh [SECONDS_PER_ROUND] (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_=(); [ "$(id -u)" -eq 0 ] || sudo_=(sudo -n)
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)
./scripts/fetch-models.sh >/dev/null
cargo build --release --locked --bin ollama-guard 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); ng=$(free_port); og=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

reply='{"model":"m","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"The sky looks blue because air scatters short wavelengths of sunlight more than long ones."},"done_reason":"stop","done":true,"total_duration":1,"load_duration":1,"prompt_eval_count":9,"prompt_eval_duration":1,"eval_count":18,"eval_duration":1}'
nginx_conf() { # NAME SERVER_BLOCK
  mkdir -p "$work/$1"
  cat >"$work/$1/nginx.conf" <<EOF
daemon off; worker_processes 1; pid $work/$1/pid; error_log $work/$1/error.log crit;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/$1; proxy_temp_path $work/$1;
  $2 }
EOF
}
nginx_conf up "server { listen 127.0.0.1:$up; keepalive_requests 1000000;
  location / { default_type application/json; return 200 '$reply'; } }"
nginx_conf ng "upstream ollama { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$ng; keepalive_requests 1000000;
  location / { proxy_pass http://ollama; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
"$nginx" -c "$work/up/nginx.conf" -p "$work/up" & pids+=($!)
"$nginx" -c "$work/ng/nginx.conf" -p "$work/ng" & pids+=($!)
PROXY_PORT=$og PROXY_HOST=127.0.0.1 OLLAMA_URL=http://127.0.0.1:$up CACHE_BACKEND=memory RUST_LOG=warn \
  target/release/ollama-guard >"$work/guard.log" 2>&1 & pids+=($!)
for port in "$up" "$ng" "$og"; do
  until curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/api/chat" -d '{"model":"m","stream":false,"messages":[{"role":"user","content":"Why is the sky blue?"}]}' 2>/dev/null; do sleep 0.2; done
done
cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"model":"m","stream":false,"messages":[{"role":"user","content":"Why is the sky blue?"}]}'
wrk.headers["Content-Type"] = "application/json"
EOF

declare -A rps p50
for round in 1 2 3; do
  for target in direct:$up nginx:$ng ollama-guard:$og; do
    name=${target%%:*}; port=${target##*:}
    out=$(wrk -t2 -c32 -d"${secs}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/api/chat")
    r=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    l=$(awk '$1 == "50%" {print $2}' <<<"$out")
    rps[$name]="${rps[$name]:-} $r"; p50[$name]="${p50[$name]:-} $l"
    echo "round $round  $name  $r req/s  p50 $l"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
printf '%-14s %12s %10s\n' target "req/s (med)" "p50 (med)"
for name in direct nginx ollama-guard; do
  printf '%-14s %12s %10s\n' "$name" "$(median <<<"${rps[$name]}")" "$(median <<<"$(sed 's/us//g; s/ms/e3/g' <<<"${p50[$name]}")")"
done
g=$(median <<<"${rps[ollama-guard]}"); n=$(median <<<"${rps[nginx]}")
echo "ollama-guard / nginx requests/s: $(python3 -c "print(round($g / $n, 2))")   (p50 in µs; wrk prints ms as e3)"

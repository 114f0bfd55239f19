# shellcheck shell=bash disable=SC2034
# Sourced by bench/nginx.sh and bench/instructions.sh: a very fast stand-in
# for Ollama, an nginx worker answering /api/chat with a fixed reply, so the
# proxy is measured and not a model. Installs nginx (Debian) and oha
# (crates.io, into target/tools) when missing, and starts the stand-in:
#   port[up-whole]:  a non-streamed reply;
#   port[up-stream]: a 200-frame NDJSON reply (199 one-word frames and the
#                    final frame), as Ollama sends them, written at once;
#   port[up-paced]:  the same 200 frames, each its own chunk written on its
#                    own, PACED_MS (default 2) apart, as Ollama flushes each
#                    token (bench/floor's `paced`): a proxy reads them one
#                    at a time.
# Sets `need COMMAND PACKAGE` (installs a missing tool), `oha`, `nginx`,
# `work` (removed on exit unless KEEP is set), `pids`
# (killed on exit), `free_port`, `nginx_conf NAME HTTP_BLOCK` and
# `body STREAM` (the request every client sends), `request PORT MODE` and
# `served MODE`; `guard`, the ollama-guard binary measured (GUARD_BIN, or
# target/release/ollama-guard, built), `floor`, the hyper floor, and
# `paced`, the paced upstream (both from bench/floor, built).
need() { # COMMAND PACKAGE: installs the Debian package when the command is missing
  command -v "$1" >/dev/null && return
  local sudo_=(); [ "$(id -u)" -eq 0 ] || sudo_=(sudo -n)
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
[ -x /usr/sbin/nginx ] || need nginx nginx-light
nginx=$(command -v nginx || echo /usr/sbin/nginx)
oha=$(command -v oha || echo target/tools/bin/oha)
[ -x "$oha" ] || cargo install oha --version 1.16.0 --locked --root target/tools
./scripts/fetch-models.sh >/dev/null
guard=${GUARD_BIN:-target/release/ollama-guard}
[ -n "${GUARD_BIN:-}" ] || cargo build --release --locked --bin ollama-guard 2>/dev/null
cargo build --release --locked --manifest-path bench/floor/Cargo.toml --target-dir target/floor 2>/dev/null
floor=target/floor/release/floor
paced=target/floor/release/paced

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d); chmod 755 "$work" # nginx workers run as nobody
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT

# Files served (nginx answers a POST to a static file with 405, so the
# error_page turns that into the file).
python3 - "$work" <<'PY'
import json, sys
dump = lambda d: json.dumps(d, separators=(",", ":"))
base = {"model": "m", "created_at": "2026-01-01T00:00:00Z"}
text = "The sky looks blue because air scatters short wavelengths of sunlight more than long ones."
with open(f"{sys.argv[1]}/whole.json", "w") as f:
    f.write(dump({**base, "message": {"role": "assistant", "content": text}, "done_reason": "stop",
                  "done": True, "total_duration": 1, "load_duration": 1, "prompt_eval_count": 9,
                  "prompt_eval_duration": 1, "eval_count": 18, "eval_duration": 1}))
words = (text + " Our eyes are also more sensitive to blue than to violet.").split()
with open(f"{sys.argv[1]}/stream.json", "w") as f:
    for i in range(199):
        f.write(dump({**base, "message": {"role": "assistant", "content": words[i % len(words)] + " "},
                      "done": False}) + "\n")
    f.write(dump({**base, "message": {"role": "assistant", "content": ""}, "done_reason": "stop",
                  "done": True, "total_duration": 1, "eval_count": 199}) + "\n")
PY

nginx_conf() { # NAME HTTP_BLOCK
  mkdir -p "$work/$1"
  printf '%s\n' "daemon off; worker_processes 1; pid $work/$1/pid; error_log $work/$1/error.log crit;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/$1; proxy_temp_path $work/$1;
  $2 }" >"$work/$1/nginx.conf"
}
declare -A port
upstreams=""
for mode in whole stream; do
  port[up-$mode]=$(free_port)
  type=application/json; [ "$mode" = stream ] && type=application/x-ndjson
  upstreams+="server { listen 127.0.0.1:${port[up-$mode]}; keepalive_requests 1000000;
    location / { default_type $type; root $work; rewrite ^ /$mode.json break; error_page 405 =200 /$mode.json; } }
  "
done
nginx_conf up "$upstreams"
"$nginx" -c "$work/up/nginx.conf" -p "$work/up" & pids+=($!)
port[up-paced]=$(free_port)
"$paced" "${port[up-paced]}" "$work/stream.json" "${PACED_MS:-2}" & pids+=($!)
body() { printf '{"model":"m","stream":%s,"messages":[{"role":"user","content":"Why is the sky blue?"}]}' "$1"; }
# Sets `req`, oha's arguments for one MODE's request to PORT:
#   whole: POST /api/chat (`body false`); stream, paced: (`body true`);
#   pass: GET /api/tags, a route nothing scans.
request() {
  case $2 in
    pass) req=(-m GET "http://127.0.0.1:$1/api/tags") ;;
    *) local stream=true; [ "$2" = whole ] && stream=false
      req=(-m POST -H 'Content-Type: application/json' -d "$(body "$stream")" "http://127.0.0.1:$1/api/chat") ;;
  esac
}
# The upstream (and the proxy in front of it) that answers MODE: pass is
# answered with the whole reply.
served() { if [ "$1" = pass ]; then echo whole; else echo "$1"; fi; }

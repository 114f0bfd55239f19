#!/usr/bin/env bash
# Start, stop and watch ollama-guard in the background.
#
#   ./run_proxy.sh start|stop|restart|status|logs|run|help [--config PATH]
#
# The proxy's own settings come from config.yaml, CONFIG_FILE, --config and
# the environment variables in the README (OLLAMA_URL, PROXY_PORT, REDIS_*...).
# Before starting, the model files of the default prompt_injection scanner are
# fetched into ./models when missing (scripts/fetch-models.sh, checksum-checked).
# This script's settings:
#   OLLAMA_GUARD_BIN            binary to run (default: the release build,
#                               built first when missing or older than the source)
#   GUARD_MODELS_DIR            the model files (default ./models next to this script)
#   OLLAMA_GUARD_PID_FILE       default ./ollama-guard.pid
#   OLLAMA_GUARD_LOG_FILE       default ./ollama-guard.log
#   OLLAMA_GUARD_START_TIMEOUT  seconds to wait for /health (default 60)
#   OLLAMA_GUARD_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 40)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
pid_file=${OLLAMA_GUARD_PID_FILE:-$here/ollama-guard.pid}
log_file=${OLLAMA_GUARD_LOG_FILE:-$here/ollama-guard.log}
start_timeout=${OLLAMA_GUARD_START_TIMEOUT:-60}
stop_timeout=${OLLAMA_GUARD_STOP_TIMEOUT:-40}
release_bin="${CARGO_TARGET_DIR:-$here/target}/release/ollama-guard"
bin=${OLLAMA_GUARD_BIN:-$release_bin}
proxy_args=()

die() { echo "run_proxy.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

# Builds the release binary when it is missing or older than the source.
ensure_binary() {
  if [ -n "${OLLAMA_GUARD_BIN:-}" ]; then
    [ -x "$bin" ] || die "OLLAMA_GUARD_BIN=$bin is not an executable file"
    return
  fi
  if [ ! -x "$bin" ] || [ -n "$(find "$here/src" "$here/Cargo.toml" "$here/Cargo.lock" -newer "$bin" -print -quit 2>/dev/null)" ]; then
    echo "building the release binary..."
    (cd "$here" && cargo build --release --locked) || die "cargo build failed"
  fi
}

# Fetches the model files when they are missing or do not verify. A failed
# fetch is not fatal here: a config that needs no model still starts, and one
# that does stops with the proxy's own message naming the fix.
ensure_models() {
  export GUARD_MODELS_DIR=${GUARD_MODELS_DIR:-$here/models}
  "$here/scripts/fetch-models.sh" >&2 || echo "run_proxy.sh: fetching the model files failed (see above)" >&2
}

# The pid in the pid file if that process is alive and is ollama-guard.
running_pid() {
  [ -f "$pid_file" ] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$pid_file")
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guards against a reused pid: only a process running our binary counts.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ollama-guard" || return 1
  echo "$pid"
}

# "host port" of the server, read from the effective config.
listen_address() {
  "$bin" --check-config "${proxy_args[@]}" | awk '
    /^server:/ { in_server = 1; next }
    /^[^ ]/ { in_server = 0 }
    in_server && $1 == "host:" { gsub(/"/, "", $2); host = $2 }
    in_server && $1 == "port:" { port = $2 }
    END { if (host == "0.0.0.0" || host == "::" || host == "") host = "127.0.0.1"; print host, port }'
}

base_url() {
  local host port
  read -r host port < <(listen_address)
  case "$host" in *:*) host="[$host]" ;; esac
  echo "http://$host:$port"
}

start() {
  ensure_binary
  ensure_models
  local pid url
  if pid=$(running_pid); then
    echo "ollama-guard is already running (pid $pid)"
    return 0
  fi
  rm -f "$pid_file"
  "$bin" --check-config "${proxy_args[@]}" >/dev/null || die "the configuration is invalid (see above)"
  url=$(base_url)
  mkdir -p "$(dirname "$log_file")" "$(dirname "$pid_file")"
  nohup "$bin" "${proxy_args[@]}" >>"$log_file" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pid_file"
  local waited=0
  until curl -fsS -o /dev/null --max-time 2 "$url/health" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pid_file"
      echo "ollama-guard exited during start-up; last log lines:" >&2
      tail -n 20 "$log_file" >&2
      exit 1
    fi
    if [ "$waited" -ge $((start_timeout * 10)) ]; then
      echo "ollama-guard (pid $pid) did not answer $url/health within ${start_timeout}s; stopping it" >&2
      stop >&2 || true
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "ollama-guard started (pid $pid) on $url; logs: $log_file"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    if [ -f "$pid_file" ]; then
      echo "stale pid file $pid_file (no ollama-guard runs with that pid); removing it"
      rm -f "$pid_file"
    else
      echo "ollama-guard is not running"
    fi
    return 0
  fi
  kill -TERM "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((stop_timeout * 10)) ]; then
      echo "ollama-guard (pid $pid) still running after ${stop_timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$pid_file"
  echo "ollama-guard stopped (pid $pid)"
}

status() {
  local pid url health
  if ! pid=$(running_pid); then
    echo "ollama-guard is not running"
    exit 3
  fi
  url=$(base_url)
  echo "ollama-guard is running (pid $pid) on $url"
  if health=$(curl -fsS --max-time 2 "$url/cache/health" 2>/dev/null); then
    echo "cache: $health"
  else
    echo "cache: $url/cache/health did not answer"
  fi
}

command=${1:-help}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --config) [ $# -ge 2 ] || die "--config needs a path"; proxy_args+=(--config "$2"); shift 2 ;;
    --config=*) proxy_args+=(--config "${1#--config=}"); shift ;;
    *) die "unknown option: $1 (see ./run_proxy.sh help)" ;;
  esac
done

case "$command" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  logs) [ -f "$log_file" ] || die "no log file at $log_file"; exec tail -n 50 -F "$log_file" ;;
  run) ensure_binary; ensure_models; exec "$bin" "${proxy_args[@]}" ;;
  help | -h | --help) usage ;;
  *) echo "unknown command: $command" >&2; usage >&2; exit 2 ;;
esac

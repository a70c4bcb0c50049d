#!/usr/bin/env bash
# The load benchmark, in one command:
#
#   bash bench/load.sh            # BENCH_SECONDS=5 per run, BENCH_ROUNDS=3 rounds
#
# Builds in release mode, installs wrk and nginx (Debian packages) if they are
# missing, starts the mock upstream, nginx as a plain keep-alive reverse proxy
# in front of it, and the example gateway, then measures — in one run,
# alternating the targets round after round — direct to the mock, nginx,
# llmgate same-format (OpenAI → OpenAI) and llmgate with full conversion
# (Anthropic client → OpenAI upstream), plus a bare hyper proxy as the floor of
# a Rust proxy (examples/hyper_proxy.rs): small and large requests at 1 and 32
# connections (wrk), 100-event streams at 64 concurrent streams and one at a
# time (loadgen), the overhead header against the measured added latency, and the gateway's
# memory at idle and with 1,000 open streams (and nginx's with the same
# streams, for reference). Prints one table and writes it
# to bench/RESULTS.md (with the machine, the date and the commit).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${BENCH_SECONDS:-5}"
ROUNDS="${BENCH_ROUNDS:-3}"
MOCK=19100 NGINX=19200 GW=19300 HYPER=19400

need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  echo "installing wrk and nginx…"
  (apt-get install -y -q wrk nginx-light >/dev/null 2>&1) || { apt-get update -q >/dev/null && apt-get install -y -q wrk nginx-light >/dev/null; }
fi
NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"

# The `release-lto` profile (Cargo.toml): release with fat LTO, as a
# deployment would build its gateway.
cargo build --profile release-lto --example gateway --example mock_upstream --example loadgen --example hyper_proxy
BIN=target/release-lto/examples
WORK="$(mktemp -d)"
python3 bench/make_bodies.py "$WORK"

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$BIN/mock_upstream" "127.0.0.1:$MOCK" >"$WORK/mock.log" 2>&1 &
PIDS+=($!)

mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<NGINX
worker_processes auto;
error_log $WORK/nginx/logs/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX;
    client_body_buffer_size 64k;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
"$NGINX_BIN" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

"$BIN/hyper_proxy" "127.0.0.1:$HYPER" "http://127.0.0.1:$MOCK" >"$WORK/hyper.log" 2>&1 &
PIDS+=($!)

BENCH_MOCK_PORT=$MOCK RUST_LOG=warn "$BIN/gateway" --config bench/gateway.toml --listen "127.0.0.1:$GW" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=($GW_PID)

wait_up() {
  for _ in $(seq 1 100); do
    if python3 -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "not up: $1"; cat "$WORK"/*.log; exit 1
}
wait_up "http://127.0.0.1:$MOCK/health"
wait_up "http://127.0.0.1:$NGINX/health"
wait_up "http://127.0.0.1:$GW/health"
wait_up "http://127.0.0.1:$HYPER/health"

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
record() { echo "{\"scenario\":\"$1\",\"target\":\"$2\",\"round\":$3,\"data\":$4}" >>"$RESULTS"; }

RSS_START=$(rss_kb $GW_PID)

url() {
  case "$1" in
    direct) echo "http://127.0.0.1:$MOCK/v1/chat/completions" ;;
    nginx) echo "http://127.0.0.1:$NGINX/v1/chat/completions" ;;
    hyper) echo "http://127.0.0.1:$HYPER/v1/chat/completions" ;;
    same) echo "http://127.0.0.1:$GW/v1/chat/completions" ;;
    convert) echo "http://127.0.0.1:$GW/v1/messages" ;;
  esac
}
body() { # target, size
  case "$1" in convert) echo "$WORK/$2_anthropic.json" ;; *) echo "$WORK/$2_openai.json" ;; esac
}

TARGETS="direct nginx hyper same convert"
# Warm every path up once.
for t in $TARGETS; do BODY="$(body "$t" small)" wrk -t1 -c4 -d1s -s bench/post.lua "$(url "$t")" >/dev/null; done

for round in $(seq 1 "$ROUNDS"); do
  for size in small large; do
    # One connection measures latency, which on a shared VM swings several-fold
    # from one second to the next: the targets alternate second by second
    # (the figure is the median over every slice of every round).
    for slice in $(seq 1 "$SECONDS_PER_RUN"); do
      for t in $TARGETS; do
        out=$(BODY="$(body "$t" $size)" wrk -t1 -c1 -d1s -s bench/post.lua "$(url "$t")" | tail -1)
        record "$size-1" "$t" "$round" "$out"
        echo "round $round.$slice  $size requests, 1 connection, $t: $out"
      done
    done
    for t in $TARGETS; do
      out=$(BODY="$(body "$t" $size)" wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" -s bench/post.lua "$(url "$t")" | tail -1)
      record "$size-32" "$t" "$round" "$out"
      echo "round $round  $size requests, 32 connections, $t: $out"
    done
  done
  for t in $TARGETS; do
    out=$("$BIN/loadgen" stream "$(url "$t")" "$(body "$t" stream)" 64 "$SECONDS_PER_RUN")
    record "stream-64" "$t" "$round" "$out"
    echo "round $round  100-event streams x64, $t: $out"
  done
  for t in $TARGETS; do
    out=$("$BIN/loadgen" stream "$(url "$t")" "$(body "$t" stream)" 1 "$SECONDS_PER_RUN")
    record "stream-1" "$t" "$round" "$out"
    echo "round $round  100-event streams x1, $t: $out"
  done
  for t in same convert; do
    out=$("$BIN/loadgen" overhead "$(url "$t")" "$(body "$t" small)" 2000)
    record "overhead" "$t" "$round" "$out"
    echo "round $round  overhead header, $t: $out"
  done
done

sleep 2  # idle: two seconds without traffic
RSS_IDLE=$(rss_kb $GW_PID)
"$BIN/loadgen" hold "http://127.0.0.1:$GW/v1/messages" "$WORK/slow_anthropic.json" 1000 8 >"$WORK/hold.log" 2>&1 &
HOLD=$!
for _ in $(seq 1 600); do grep -q holding "$WORK/hold.log" 2>/dev/null && break; sleep 0.1; done
sleep 2
RSS_HELD=$(rss_kb $GW_PID)
HELD=$(grep -o 'holding [0-9]*' "$WORK/hold.log" | awk '{print $2}')
wait $HOLD 2>/dev/null || true
echo "gateway RSS: start ${RSS_START} kB, idle after load ${RSS_IDLE} kB, ${HELD} open streams ${RSS_HELD} kB"

# The same 1,000 streams through nginx, for reference: its master and workers.
nginx_rss_kb() { local t=0 p; for p in $(pgrep -f "nginx: (master|worker)"); do t=$((t + $(rss_kb "$p"))); done; echo $t; }
NGINX_IDLE=$(nginx_rss_kb)
"$BIN/loadgen" hold "http://127.0.0.1:$NGINX/v1/messages" "$WORK/slow_anthropic.json" 1000 8 >"$WORK/hold-nginx.log" 2>&1 &
HOLD=$!
for _ in $(seq 1 600); do grep -q holding "$WORK/hold-nginx.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
NGINX_HELD=$(nginx_rss_kb)
wait $HOLD 2>/dev/null || true
echo "nginx RSS (master + workers): idle ${NGINX_IDLE} kB, 1000 open streams ${NGINX_HELD} kB"

COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo '+dirty')"
MACHINE="$(lscpu 2>/dev/null | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
python3 bench/report.py "$RESULTS" "$RSS_START" "$RSS_IDLE" "$RSS_HELD" "${HELD:-0}" "$COMMIT" "$MACHINE" "$SECONDS_PER_RUN" "$ROUNDS" "$NGINX_IDLE" "$NGINX_HELD" | tee bench/RESULTS.md

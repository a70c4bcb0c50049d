#!/usr/bin/env bash
# End-to-end tests: the official Anthropic and OpenAI Python SDKs against the
# example gateway. Creates a virtualenv (kept in target/), starts the
# gateway with tests/e2e/gateway.toml, runs pytest, stops the gateway.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/e2e-venv
if [ ! -x "$VENV/bin/pytest" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
fi

cargo build --example gateway
export LLMGATE_E2E_KEY="e2e-$RANDOM$RANDOM"
export LLMGATE_E2E_PORT="${LLMGATE_E2E_PORT:-18090}"
export LLMGATE_E2E_URL="http://127.0.0.1:$LLMGATE_E2E_PORT"
LOG=target/e2e-gateway.log
target/debug/examples/gateway --config tests/e2e/gateway.toml --listen "127.0.0.1:$LLMGATE_E2E_PORT" >"$LOG" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null || true' EXIT
healthy() {
  python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$LLMGATE_E2E_URL/health" >/dev/null 2>&1
}
for _ in $(seq 1 100); do
  if healthy; then break; fi
  if ! kill -0 $GW 2>/dev/null; then echo "the gateway exited:"; cat "$LOG"; exit 1; fi
  sleep 0.1
done
healthy || { echo "the gateway did not start:"; cat "$LOG"; exit 1; }

"$VENV/bin/pytest" -q tests/e2e "$@"

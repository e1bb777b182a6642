#!/usr/bin/env bash
# One command: set up, then run the gateway on the embedded default (SQLite, in-process state).
# Without ANTHROPIC_API_KEY it runs in front of `bastion mock`, a fake Anthropic API, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh sdk
export BASTION_CONFIG="${BASTION_CONFIG:-examples/quickstart.yaml}"
port="${BASTION_PORT:-8787}"
bastion=.venv/bin/bastion
mkdir -p .bastion
$bastion init >/dev/null

mock_pid=""
cleanup() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true; }
trap cleanup EXIT
if [ -z "${ANTHROPIC_API_KEY:-}" ]; then
  mock_port="${BASTION_MOCK_PORT:-8788}"
  echo "================================================================"
  echo " No ANTHROPIC_API_KEY set: running in front of bastion mock, a"
  echo " FAKE Anthropic API on 127.0.0.1:${mock_port}. Answers are canned."
  echo " Set ANTHROPIC_API_KEY and run again to talk to Anthropic."
  echo "================================================================"
  $bastion mock --port "$mock_port" &
  mock_pid=$!
  export BASTION_UPSTREAM_URL="http://127.0.0.1:${mock_port}"
  export ANTHROPIC_API_KEY="sk-ant-mock-not-a-real-key"
else
  echo "ANTHROPIC_API_KEY is set: Bastion talks to ${BASTION_UPSTREAM_URL:-https://api.anthropic.com}."
fi

key=$($bastion keys create --env dev --owner "${USER:-dev}@localhost" --name quickstart 2>/dev/null)
cat <<MSG

Bastion key for this session (shown once):  $key
Dashboard: http://127.0.0.1:${port}/dashboard  (admin key: the contents of .bastion/admin_key)

Try it:
  .venv/bin/python - <<'PY'
import anthropic
client = anthropic.Anthropic(base_url="http://127.0.0.1:${port}", api_key="$key")
msg = client.messages.create(model="claude-sonnet-5-5", max_tokens=300,
                             messages=[{"role": "user", "content": "Hello"}])
print(msg.content[0].text, msg.usage)
PY

MSG
exec $bastion serve --port "$port"

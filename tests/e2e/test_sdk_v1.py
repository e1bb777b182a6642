"""The 1.x SDK (x-api-key, API version 2023-06-01, /v1/messages?beta=true) through the gateway.

It is installed apart from the 2.x SDK (scripts/test.sh puts it in .venv-sdk1) and runs in a
child interpreter with that directory first on its path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.e2e.harness import Gateway, wait_for_record

SDK1 = Path(__file__).resolve().parents[2] / ".venv-sdk1"

SCRIPT = r"""
import json, sys
import anthropic
url, key, rid = sys.argv[1:4]
client = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
messages = [{"role": "user", "content": "Say hello to the old SDK."}]
plain = client.messages.with_raw_response.create(
    model="claude-sonnet-4-6", max_tokens=50, messages=messages, extra_body={"temperature": 0.2},
    extra_headers={"x-request-id": rid + "-plain"})
beta = client.beta.messages.with_raw_response.create(
    model="claude-sonnet-4-6", max_tokens=50, messages=messages,
    extra_headers={"x-request-id": rid + "-beta"})
with client.messages.stream(model="claude-sonnet-4-6", max_tokens=50, messages=messages,
                            extra_headers={"x-request-id": rid + "-stream"}) as stream:
    streamed = stream.get_final_text()
print(json.dumps({
    "version": anthropic.__version__,
    "plain_text": plain.parse().content[0].text,
    "plain_url": str(plain.http_request.url),
    "plain_headers": dict(plain.http_request.headers),
    "beta_url": str(beta.http_request.url),
    "beta_text": beta.parse().content[0].text,
    "streamed": streamed,
}))
"""


def test_sdk_1x_works_unchanged(gateway: Gateway, key: str) -> None:
    assert (SDK1 / "anthropic" / "__init__.py").exists(), "run scripts/test.sh: it installs SDK 1.x"
    rid = "v1-" + uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, gateway.url, key, rid],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SDK1)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["version"].startswith("1.")
    assert out["plain_headers"]["x-api-key"] == key  # how 1.x sends the key
    assert out["plain_headers"]["anthropic-version"] == "2023-06-01"
    assert out["beta_url"].endswith("/v1/messages?beta=true")
    assert out["plain_text"] and out["beta_text"] and out["streamed"] == out["plain_text"]
    for suffix in ("plain", "beta", "stream"):
        record = wait_for_record(gateway.db, f"{rid}-{suffix}")
        assert record["status"] == 200 and record["outcome"] == "ok"
        assert record["cost_micros"] is not None and record["cost_micros"] > 0

"""Fixture applications for `bastion audit`, built for real: files on disk and `git commit`s.

Keys are made from a seeded random generator, so they have the shape and entropy of real keys
and are the same on every run, yet were never issued by anyone. Git runs with a fixed author,
fixed dates and no user or system config, so commit ids are the same on every machine.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
from pathlib import Path

_ALPHABET = string.ascii_letters + string.digits + "-_"
_FORMS = {"api03": 93, "admin01": 93, "oat01": 64, "ort01": 64}


def fake_key(form: str, seed: int) -> str:
    """A key-shaped string: `sk-ant-<form>-` + a seeded random tail (+ "AA" for api/admin)."""
    rng = random.Random(f"{form}-{seed}")
    tail = "".join(rng.choice(_ALPHABET) for _ in range(_FORMS[form]))
    return f"sk-ant-{form}-{tail}" + ("AA" if form in ("api03", "admin01") else "")


class Repo:
    """A folder with files and, once `init` ran, a git repository with deterministic commits."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def remove(self, path: str) -> None:
        (self.root / path).unlink()

    def git(self, *args: str, date: str = "2026-01-05T10:00:00+00:00") -> str:
        env = {
            "PATH": os.environ["PATH"], "HOME": str(self.root), "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Fixture Author", "GIT_AUTHOR_EMAIL": "author@example.com",
            "GIT_COMMITTER_NAME": "Fixture Author", "GIT_COMMITTER_EMAIL": "author@example.com",
            "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date,
        }  # fmt: skip
        done = subprocess.run(
            ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def init(self) -> None:
        self.git("init", "--quiet", "--initial-branch=main")

    def commit(self, message: str, date: str) -> str:
        """Stage everything git does not ignore, commit it, return the commit id."""
        self.git("add", "--all")
        self.git("commit", "--quiet", "--message", message, date=date)
        return self.git("rev-parse", "HEAD")


def source_map(sources: dict[str, str]) -> str:
    return json.dumps({
        "version": 3, "file": "bundle.js", "mappings": "AAAA",
        "sources": list(sources), "sourcesContent": list(sources.values()),
    })  # fmt: skip


# The Python app: a key committed then deleted, a committed .env, client problems, bundles.
PY_HISTORY_KEY = fake_key("api03", 1)
PY_ENV_KEY = fake_key("api03", 2)
PY_BUNDLE_KEY = fake_key("admin01", 3)
PY_MAP_KEY = fake_key("oat01", 4)
PY_IGNORED_KEY = fake_key("api03", 5)
PY_KEYS = (PY_HISTORY_KEY, PY_ENV_KEY, PY_BUNDLE_KEY, PY_MAP_KEY, PY_IGNORED_KEY)

PY_CLIENT = '''"""Talks to Claude."""
import os

import anthropic

client = anthropic.Anthropic(api_key=os.environ["ANTHROPIC_API_KEY"], max_retries=0)
gateway = anthropic.Anthropic(base_url="https://api.anthropic.com", timeout=30.0)


def summarize(text: str) -> str:
    reply = client.messages.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": text}],
    )
    return reply.content[0].text


def essay(topic: str) -> object:
    return gateway.messages.stream(model="claude-opus-5-5", max_tokens=128000, messages=[])
'''


def python_app(root: Path) -> tuple[Repo, dict[str, str]]:
    """Build the Python app; returns the repo and its commit ids by name."""
    repo = Repo(root)
    repo.init()
    repo.write(".gitignore", "dist/\n.env.local\n__pycache__/\n")
    repo.write(".env", f"ANTHROPIC_API_KEY={PY_ENV_KEY}\nLOG_LEVEL=info\n")
    repo.write("app/__init__.py", "")
    repo.write("app/settings.py", f'DEBUG = False\nANTHROPIC_KEY = "{PY_HISTORY_KEY}"\n')
    repo.write("app/client.py", PY_CLIENT)
    first = repo.commit("first version", "2026-01-05T10:00:00+00:00")
    repo.write(
        "app/settings.py", 'import os\n\nDEBUG = False\nKEY = os.environ["ANTHROPIC_API_KEY"]\n'
    )
    second = repo.commit("read the key from the environment", "2026-02-01T09:30:00+00:00")
    repo.write(".env.local", f"ANTHROPIC_API_KEY={PY_IGNORED_KEY}\n")
    repo.write("dist/bundle.js", f'!function(){{var k="{PY_BUNDLE_KEY}";fetch("/x",{{k}})}}();\n')
    repo.write("dist/bundle.js.map", source_map({
        "webpack://app/src/index.js": "import {go} from './go';\ngo();\n",
        "webpack://app/src/config.js": f"// config\nexport const token = '{PY_MAP_KEY}';\n",
    }))  # fmt: skip
    repo.write("node_modules/leftpad/index.js", f'var k = "{PY_BUNDLE_KEY}";\n')
    return repo, {"first": first, "second": second}


# The TypeScript app: browser client, missing max_tokens, a key committed then deleted.
TS_HISTORY_KEY = fake_key("api03", 11)
TS_BUNDLE_KEY = fake_key("api03", 12)
TS_MAP_KEY = fake_key("ort01", 13)
TS_KEYS = (TS_HISTORY_KEY, TS_BUNDLE_KEY, TS_MAP_KEY)

TS_CLIENT = """import Anthropic from "@anthropic-ai/sdk";

// A comment that says maxRetries: 0 is not code.
export const client = new Anthropic({
  apiKey: import.meta.env.VITE_ANTHROPIC_KEY,
  dangerouslyAllowBrowser: true,
  maxRetries: 0,
});
"""
TS_CHAT = """import { client } from "./client";

export async function ask(question: string) {
  const reply = await client.messages.create({
    model: "claude-haiku-4-5",
    messages: [{ role: "user", content: question }],
  });
  return reply;
}

export function long(messages: Anthropic.MessageParam[]) {
  return client.messages.stream({ model: "claude-opus-5-5", max_tokens: 128_000, messages });
}

const raw = await fetch("https://api.anthropic.com/v1/messages", { method: "POST" });
"""


def typescript_app(root: Path) -> tuple[Repo, dict[str, str]]:
    repo = Repo(root)
    repo.init()
    repo.write(".gitignore", "dist/\nnode_modules/\n")
    repo.write("package.json", '{"name": "web", "dependencies": {"@anthropic-ai/sdk": "^0.80"}}\n')
    repo.write("src/client.ts", TS_CLIENT)
    repo.write("src/config.ts", f'export const KEY = "{TS_HISTORY_KEY}";\n')
    first = repo.commit("prototype", "2026-03-10T08:00:00+00:00")
    repo.remove("src/config.ts")
    repo.write("src/chat.ts", TS_CHAT)
    second = repo.commit("remove the hard-coded key", "2026-03-11T08:00:00+00:00")
    repo.write("dist/assets/index-4f2a.js", f'const e="{TS_BUNDLE_KEY}";export{{e}};\n')
    repo.write("dist/assets/index-4f2a.js.map", source_map({
        "../src/client.ts": TS_CLIENT, "../src/secret.ts": f"export const t = '{TS_MAP_KEY}';\n",
    }))  # fmt: skip
    return repo, {"first": first, "second": second}


# A clean app in both languages: everything done right, nothing to report.
CLEAN_PY = '''"""Calls Claude through the gateway; api.anthropic.com is never called from here."""
import os

import anthropic

client = anthropic.Anthropic(
    base_url=os.environ.get("BASTION_URL", "https://bastion.internal.example"),
    api_key=os.environ["ANTHROPIC_API_KEY"],
    timeout=30.0,
    max_retries=3,
)


def ask(text: str) -> str:
    reply = client.messages.create(
        model="claude-sonnet-5-5", max_tokens=1024, messages=[{"role": "user", "content": text}]
    )
    return reply.content[0].text


def stream(params: dict) -> object:
    return client.messages.stream(**params)


def legacy(text: str) -> object:
    return client.messages.create(model="claude-haiku-4-5-20251001", max_tokens=4000, messages=[])
'''
CLEAN_TS = """import Anthropic from "@anthropic-ai/sdk";

// Never set dangerouslyAllowBrowser: true, never maxRetries: 0.
const client = new Anthropic({
  baseURL: process.env.BASTION_URL,
  apiKey: process.env.BASTION_KEY,
  timeout: 20_000,
  maxRetries: 2,
});

export const answer = (question: string) =>
  client.messages.create({
    model: "claude-haiku-5-5",
    max_tokens: 512,
    messages: [{ role: "user", content: `${question} (see "api" docs)` }],
  });

export const forwarded = (params: Anthropic.MessageCreateParams) => client.messages.create(params);
"""
CLEAN_IGNORED_KEY = fake_key("api03", 21)


def clean_app(root: Path) -> Repo:
    repo = Repo(root)
    repo.init()
    repo.write(".gitignore", ".env\n")
    repo.write(".env.example", "ANTHROPIC_API_KEY=\nBASTION_URL=https://bastion.internal.example\n")
    repo.write(".env", f"ANTHROPIC_API_KEY={CLEAN_IGNORED_KEY}\n")
    repo.write("README.md", "Set `ANTHROPIC_API_KEY=sk-ant-api03-" + "x" * 93 + "AA` locally.\n")
    repo.write("app.py", CLEAN_PY)
    repo.write("web/client.ts", CLEAN_TS)
    repo.commit("clean app", "2026-04-01T12:00:00+00:00")
    repo.write("app.py", CLEAN_PY + "\n# second revision\n")
    repo.commit("tweak", "2026-04-02T12:00:00+00:00")
    repo.write("dist/app.js", 'fetch("/api/ask",{method:"POST"});\n')
    return repo

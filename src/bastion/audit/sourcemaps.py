"""Source maps: which original file a key in a `.map` came from.

A map's `sourcesContent` holds the original sources verbatim, so a key written in src/config.ts
ships in app.js.map even when minification moved it out of app.js. Keys are found in the map's
raw text (the JSON string escaping leaves a key's characters unchanged), which gives a position
in the map file; this module names the original source and line for the message.
"""

from __future__ import annotations

import json

from bastion.audit.positions import LineIndex
from bastion.audit.secrets import find_keys


def key_origins(map_text: str) -> dict[str, str]:
    """Key → "<source> line N" for every key in the map's sourcesContent; {} if not a map."""
    try:
        document = json.loads(map_text)
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    sources = document.get("sources")
    contents = document.get("sourcesContent")
    if not isinstance(contents, list):
        return {}
    names = sources if isinstance(sources, list) else []
    origins: dict[str, str] = {}
    for number, content in enumerate(contents):
        if not isinstance(content, str):
            continue
        name = names[number] if number < len(names) and isinstance(names[number], str) else "?"
        index = LineIndex(content)
        for key in find_keys(content):
            origins.setdefault(key.value, f"{name} line {index.position(key.start)[0]}")
    return origins

"""The shape of an Anthropic key, for the two places that look for one in text: the sample
redactor and `bastion audit`. Each builds its own patterns from these (redaction wants any
key-like run, the audit each known form)."""

KEY_PREFIX = "sk-ant-"
KEY_CHAR = r"[A-Za-z0-9_\-]"
"""One character of a key after its prefix."""

"""Streams as they pass: SSE frames and usage folding (pure, no I/O)."""

"""Sampled request/response pairs: capture on the request path, store off it (docs/sampling.md)."""

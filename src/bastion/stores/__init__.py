"""Durable state behind one interface: keys and the request log."""

"""The built-in dashboard: its queries over the rollups, login sessions, and its HTTP endpoints."""

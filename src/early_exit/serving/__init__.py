"""Serving: the refilling scheduler, the HTTP API and the load generator (docs/serving.md)."""

"""The daemon's HTTP side: webhooks, health and metrics, the ingest API (one ASGI app)."""

"""Cases HTTP API."""

"""Registry HTTP API."""

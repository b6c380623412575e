"""HR HTTP API."""

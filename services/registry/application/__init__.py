"""Registry use cases, one per file."""

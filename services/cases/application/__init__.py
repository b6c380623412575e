"""Cases use cases, one per file."""

"""HR use cases, one per file."""

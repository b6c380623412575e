"""SQL migrations of the registry read side (package data)."""

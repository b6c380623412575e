"""SQL migrations of the HR read side (package data)."""

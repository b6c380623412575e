"""SQL migrations of the cases read side (package data)."""

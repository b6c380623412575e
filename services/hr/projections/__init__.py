"""HR read models."""

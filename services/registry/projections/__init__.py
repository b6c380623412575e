"""Registry read models."""

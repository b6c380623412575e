"""Cases read models."""

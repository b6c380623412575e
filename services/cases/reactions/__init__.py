"""Reactions of cases to other services' events."""

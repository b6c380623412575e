"""Keeping background work going on a bad day: outages told apart from bad events, stalls
isolated per (follower, tenant), background tasks supervised."""

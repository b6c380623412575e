"""Embedded development stack: private PostgreSQL and NATS JetStream servers."""

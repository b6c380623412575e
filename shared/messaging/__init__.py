"""NATS JetStream: streams, the outbox relay's publisher side and durable consumers."""

"""The event store is the outbox: the relay publishes committed events to NATS."""

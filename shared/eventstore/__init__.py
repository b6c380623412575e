"""The write side: one `eventsourcing` application per (service, tenant) on a shared pool."""

"""HTTP conventions every service shares (Litestar): auth, tenancy guards, problem details,
idempotent commands, health, metrics, structured logs, the events feed."""

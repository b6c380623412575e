"""The entry point: the `mpks` command (up, serve, migrate, token, status, rebuild, retry)
and the dev stack's process orchestration. It composes the kernel (`shared`) with the
services the composition root (`services.bootstrap`) declares; the kernel knows neither."""

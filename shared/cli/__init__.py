"""The `mpks` command line: up, serve, migrate, token, status, rebuild."""

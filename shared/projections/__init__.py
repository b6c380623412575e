"""Read models built from a service's own tenant logs, exactly once."""

"""Pure domain of the registry: aggregates, their events and business rules."""

"""Pure domain of HR: aggregates, their events and business rules."""

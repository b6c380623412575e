"""Pure domain of cases: aggregates, their events and business rules."""

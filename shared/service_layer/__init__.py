"""The service layer every service writes on: commands, their handlers, the unit of work
they change aggregates through, and the bus that runs any command the same way."""

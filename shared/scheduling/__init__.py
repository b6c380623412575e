"""Deadlines: "when moment D passes, issue command C once" (`deadlines.py` records them,
`scheduler.py` issues them)."""

"""What auditors rely on, written once for every service: the history of any record."""

"""What cases does on events, by issuing its own commands; one rule per module, named by it."""

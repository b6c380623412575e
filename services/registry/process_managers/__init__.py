"""What the registry does on its own events, by issuing its own commands; one rule per
module, named by it."""

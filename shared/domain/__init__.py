"""Seedwork for the pure domain: no I/O and no framework imports live here."""

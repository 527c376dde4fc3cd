"""Backends behind the tools: the embedded SQLite system of record, and vendor platforms."""

"""The embedded SQLite store: connection, schema, idempotency records, audit log."""

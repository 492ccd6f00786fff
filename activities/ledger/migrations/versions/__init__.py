"""The ledger's revisions, oldest first: `0001_*`, `0002_*`, ... Each is checked on SQLite and PostgreSQL."""

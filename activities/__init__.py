"""All I/O: look-ups and writes through the adapters an app registers (idempotent), and the ledger."""

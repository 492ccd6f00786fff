"""All I/O: validation look-ups, writes to business systems (idempotent), and the ledger."""

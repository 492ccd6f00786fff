"""The ledger's Alembic migrations. Run them with `handoff migrate` or `activities.ledger.migrate.upgrade`.

A package (not a loose folder) so the revisions ship in the wheel with the code whose tables they create.
"""

"""The ledger: one SQL record of every run, case, decision and delivery, so operations report from one place.

Temporal is the source of truth for a run's live state; the ledger is its audit and reporting record, written by
idempotent activities (see `writes`).
"""

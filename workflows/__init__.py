"""Deterministic orchestration: the handoff workflow, pure rule evaluation, the readiness gate.

Nothing in this package does I/O: Temporal's sandbox re-imports it for every run, and replays it from history.
"""

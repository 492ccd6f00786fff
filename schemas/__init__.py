"""The single definition of every shape in Handoff: the contract language, payloads, cases, decisions, API bodies.

This package imports pydantic only, so workflows (inside Temporal's sandbox), activities, the CLI and the HTTP API
all share one set of models.
"""

"""Processes: the worker, the embedded dev server, the CLI and the HTTP API, and what they share."""

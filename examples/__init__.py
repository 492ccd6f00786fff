"""Example user packages: each reaches Handoff only through its public API (`from handoff import ...`)."""

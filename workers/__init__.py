"""The app object users bring (`Handoffs`) and its plugin; processes: worker, embedded server, CLI, HTTP API."""

"""`handoff api`: serve the HTTP API with uvicorn on `api_host:api_port` until SIGTERM or Ctrl-C.

Uvicorn's own logging is switched off (`log_config=None`) so its lines go through Handoff's structlog set-up, in
the same format as the worker's; its HTTP protocol is Handoff's (`api.protocol`), so that a request HTTP cannot
read is answered with the API's JSON error, not uvicorn's plain text.
"""

from __future__ import annotations

from typing import Annotated

import typer

from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.logs import configure_logging
from handoff.workers.settings import load_settings


@app.command(name="api")
def api_command(
    host: Annotated[str | None, typer.Option("--host", help="Bind address; default: HANDOFF_API_HOST.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port; default: HANDOFF_API_PORT.")] = None,
    app_spec: AppOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) for your app, against the configured Temporal and ledger."""
    # Imported here: FastAPI and uvicorn are a third of every `handoff` command's start-up, and only this needs them.
    import uvicorn

    from handoff.workers.api import create_app
    from handoff.workers.api.protocol import HTTP_PROTOCOL

    user_app = load_user_app(app_spec)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings, user_app),
        host=host or settings.api_host,
        port=port if port is not None else settings.api_port,
        log_config=None,
        http=HTTP_PROTOCOL,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
    )

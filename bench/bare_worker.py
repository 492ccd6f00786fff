"""The bare worker as its own process, for bench/parked.py: what `handoff worker` is, for the bare workflow.

    HANDOFF_TEMPORAL_ADDRESS=... HANDOFF_TASK_QUEUE=... HANDOFF_HOME=... .venv/bin/python bench/bare_worker.py

Reads the same HANDOFF_* settings, opens the same ledger and the restaurant's systems as `handoff worker
--app examples.restaurant:app` does (RESTAURANT_DATABASE_URL, else SQLite in HANDOFF_HOME; tables made on first
use), runs until SIGTERM or SIGINT and shuts down gracefully, like `workers.worker.serve` (without the readiness
gate, which has no contract to check here).

Its client is a plain one, `Client.connect(..., data_converter=pydantic_data_converter)`, as a hand-written app's
would be: not Handoff's `workers.client.connect`, whose converter encrypts every payload (the benchmarks' dev
server needs no TLS or API key). `best_worker.py` runs the best hand-written workflow through the same `serve`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

# The restaurant is a user package at the repository's root, not installed with Handoff (see harness.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from examples.restaurant import app
from examples.restaurant.systems import RestaurantSystems
from handoff.workers.logs import configure_logging
from handoff.workers.settings import Settings, load_settings
from handoff.workers.worker import open_ledger

from bare_activities import build_bare_worker

Build = Callable[..., Worker]  # (client, settings, *, ledger, systems) -> Worker


async def plain_client(settings: Settings) -> Client:
    """A client with temporalio's pydantic converter and nothing else, as a hand-written app connects."""
    return await Client.connect(
        settings.temporal_address, namespace=settings.namespace, data_converter=pydantic_data_converter
    )


async def serve(build: Build = build_bare_worker) -> None:
    settings = load_settings()
    systems: RestaurantSystems = app.systems  # the object `handoff worker --app examples.restaurant:app` runs with
    ledger: Engine = open_ledger(settings)
    try:
        client = await plain_client(settings)
        worker = build(client, settings, ledger=ledger, systems=systems)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with worker:
            await stop.wait()
    finally:
        ledger.dispose()
        systems.dispose()


def serve_process(build: Build = build_bare_worker) -> None:
    """Run `serve` as the process's main, leaving with `os._exit` (see harness.main)."""
    configure_logging(os.environ.get("HANDOFF_LOG_LEVEL", "INFO"))
    asyncio.run(serve(build))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    serve_process()

"""The bare worker as its own process, for bench/parked.py: what `handoff worker` is, for the bare workflow.

    HANDOFF_TEMPORAL_ADDRESS=... HANDOFF_TASK_QUEUE=... HANDOFF_HOME=... .venv/bin/python bench/bare_worker.py

Reads the same HANDOFF_* settings, opens the same ledger and the restaurant's systems as `handoff worker
--app examples.restaurant:app` does (RESTAURANT_DATABASE_URL, else SQLite in HANDOFF_HOME; tables made on first
use), runs until SIGTERM or SIGINT and shuts down gracefully, like `workers.worker.serve` (without the readiness
gate, which has no contract to check here).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

# The restaurant is a user package at the repository's root, not installed with Handoff (see harness.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.restaurant import app
from handoff.workers.client import connect
from handoff.workers.logs import configure_logging
from handoff.workers.settings import load_settings
from handoff.workers.worker import open_ledger

from bare_activities import build_bare_worker


async def serve() -> None:
    settings = load_settings()
    systems = app.systems  # the object `handoff worker --app examples.restaurant:app` runs with
    ledger = open_ledger(settings)
    try:
        client = await connect(settings)
        worker = build_bare_worker(client, settings, ledger=ledger, systems=systems)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with worker:
            await stop.wait()
    finally:
        ledger.dispose()
        systems.dispose()


if __name__ == "__main__":
    configure_logging(os.environ.get("HANDOFF_LOG_LEVEL", "INFO"))
    asyncio.run(serve())
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

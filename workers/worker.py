"""The Handoff worker process: runs a user's app (its plugin on a Worker), and refuses an app that is not ready.

`serve` is what `handoff worker --app ...` runs: settings -> logging -> readiness gate -> client -> worker -> clean
shutdown on SIGTERM / SIGINT (in-flight activities get `graceful_shutdown_seconds` to finish).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from handoff.activities.ledger.database import create_schema, make_engine
from handoff.workers.app import Handoffs
from handoff.workers.client import connect
from handoff.workers.decisions import decision_key
from handoff.workers.settings import Settings

log = structlog.get_logger(__name__)


def build_worker(
    client: Client,
    settings: Settings,
    app: Handoffs,
    *,
    ledger: Engine,
    task_queue: str | None = None,
) -> Worker:
    """A worker for the app's handoffs, wired to this ledger; raises `AppNotReady` when the gate says so."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        plugins=[
            app.plugin(
                ledger=ledger,
                decision_key=decision_key(settings),
                pause_after_write=settings.delivery_pause_seconds,
            )
        ],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )


def open_ledger(settings: Settings) -> Engine:
    """The ledger's engine, its schema migrated to the newest revision."""
    engine = make_engine(settings.ledger_url)
    create_schema(engine)
    return engine


@contextmanager
def opened_ledger(settings: Settings) -> Iterator[Engine]:
    """`open_ledger` for one block (a CLI command's reads and writes), its connections closed afterwards."""
    engine = open_ledger(settings)
    try:
        yield engine
    finally:
        engine.dispose()


async def serve(settings: Settings, app: Handoffs) -> None:
    """Run a worker for `app` until SIGTERM or SIGINT, then shut down gracefully."""
    app.raise_unless_ready()
    ledger = open_ledger(settings)
    try:
        client = await connect(settings)
        worker = build_worker(client, settings, app, ledger=ledger)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # The activities' blocking work (the ledger's SQL, sync adapters) runs on the loop's default executor: as
        # many threads as activities may run at once, so that waiting for a thread never eats into an activity's
        # start-to-close timeout (asyncio's default is min(32, CPUs + 4) threads).
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=settings.max_concurrent_activities, thread_name_prefix="handoff-activity")
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info(
            "worker.started",
            task_queue=settings.task_queue,
            temporal=settings.temporal_address,
            namespace=settings.namespace,
            handoffs=[c.name for c in app.catalog.contracts],
        )
        async with worker:
            await stop.wait()
            log.info("worker.stopping", graceful_shutdown_seconds=settings.graceful_shutdown_seconds)
        log.info("worker.stopped")
    finally:
        ledger.dispose()

"""The Handoff worker: runs every contract's workflow and the activities, and refuses unready contracts.

`serve` is what `handoff worker` runs: settings -> logging -> readiness gate -> client -> worker -> clean shutdown
on SIGTERM / SIGINT (in-flight activities get `graceful_shutdown_seconds` to finish).
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from handoff.activities.delivery import DeliveryActivities
from handoff.activities.ledger.activities import LedgerActivities
from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.systems import DemoSystems
from handoff.activities.validation import ValidationActivities
from handoff.schemas.contract import Catalog
from handoff.schemas.findings import CatalogReadiness, Registries
from handoff.workers.client import connect
from handoff.workers.interceptors import LoggingContextInterceptor
from handoff.workers.settings import Settings
from handoff.workflows.catalog import CATALOG
from handoff.workflows.handoff import HandoffWorkflow
from handoff.workflows.readiness import check_catalog

log = structlog.get_logger(__name__)


class CatalogNotReady(Exception):
    """A contract in the catalog is not ready; the worker will not run it. Carries the gate's findings."""

    def __init__(self, readiness: CatalogReadiness) -> None:
        self.readiness = readiness
        lines = [f"{f.contract}: [{f.kind.value}] {f.subject}: {f.message}" for f in readiness.findings]
        super().__init__("The catalog is not ready; the worker refuses to start:\n" + "\n".join(lines))


def gate(catalog: Catalog, systems: DemoSystems) -> None:
    """Raise `CatalogNotReady` unless every contract is ready, with the checks and systems this worker has."""
    registries = Registries(lookups=systems.known_checks, targets=systems.known_systems)
    readiness = check_catalog(catalog, registries=registries)
    if not readiness.ready:
        raise CatalogNotReady(readiness)


def build_worker(
    client: Client,
    settings: Settings,
    *,
    ledger: Engine,
    systems: DemoSystems,
    task_queue: str | None = None,
) -> Worker:
    """A worker for the catalog's workflow and every activity, wired to this ledger and these systems."""
    recorder = LedgerActivities(ledger)
    validation = ValidationActivities(systems)
    delivery = DeliveryActivities(systems, ledger, pause_after_write=settings.delivery_pause_seconds)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[HandoffWorkflow],
        activities=[
            recorder.record_stage_change,
            recorder.record_escalation,
            recorder.record_refusal,
            validation.run_lookups,
            delivery.deliver,
        ],
        interceptors=[LoggingContextInterceptor()],
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


def open_systems(settings: Settings) -> DemoSystems:
    """The demo business systems, seeded with their reference data (floor tables, menu, blocked accounts)."""
    systems = DemoSystems(settings.systems_url)
    systems.seed()
    return systems


async def serve(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT, then shut down gracefully."""
    systems = open_systems(settings)
    ledger = open_ledger(settings)
    try:
        gate(CATALOG, systems)
        client = await connect(settings)
        worker = build_worker(client, settings, ledger=ledger, systems=systems)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log.info(
            "worker.started",
            task_queue=settings.task_queue,
            temporal=settings.temporal_address,
            namespace=settings.namespace,
            handoffs=[c.name for c in CATALOG.contracts],
        )
        async with worker:
            await stop.wait()
            log.info("worker.stopping", graceful_shutdown_seconds=settings.graceful_shutdown_seconds)
        log.info("worker.stopped")
    finally:
        ledger.dispose()
        systems.dispose()

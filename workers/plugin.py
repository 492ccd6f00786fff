"""The app's Temporal plugin: Handoff joins any `Worker` the way temporalio's own integrations do.

    worker = Worker(client, task_queue="handoffs", plugins=[app.plugin()])

It adds the handoff workflow, the activities (look-ups, deliveries, ledger writes) bound to the app and the ledger,
the local activity that authorises decisions (`verify_decision`, with the decision key), the logging interceptor, and
the pydantic data converter for a `Client` built with it. When a worker is built it runs the readiness gate (an app
that is not ready never polls), takes the decision key (so a worker without one never polls either) and registers the
app's contracts for the workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.plugin import SimplePlugin
from temporalio.worker import Replayer, WorkerConfig, WorkflowReplayResult

from handoff.activities.authorisation import AuthorisationActivities
from handoff.activities.delivery import DeliveryActivities
from handoff.activities.ledger.activities import LedgerActivities
from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.validation import ValidationActivities
from handoff.schemas.contract import HandoffContract
from handoff.workers.decisions import decision_key
from handoff.workers.interceptors import LoggingContextInterceptor
from handoff.workers.settings import load_settings
from handoff.workflows.handoff import HandoffWorkflow
from handoff.workflows.registered import forget, register

if TYPE_CHECKING:
    from handoff.workers.app import Handoffs


class HandoffPlugin(SimplePlugin):
    """Handoff's workflow and activities for one app, on one ledger."""

    def __init__(
        self,
        app: Handoffs,
        *,
        ledger: Engine | str | None = None,
        pause_after_write: float = 0.0,
        key: bytes | None = None,
    ) -> None:
        """`key`: what decisions are verified with; default: the settings' (`HANDOFF_DECISION_KEY`, else the
        development key under `HANDOFF_HOME`), taken when a worker is built."""
        self._app = app
        self._decision_key = key
        # A ledger given as an engine belongs to the caller; one made here from a URL is migrated and disposed here.
        self._owns_ledger = not isinstance(ledger, Engine)
        self._ledger = ledger if isinstance(ledger, Engine) else make_engine(ledger or load_settings().ledger_url)
        recorder = LedgerActivities(self._ledger)
        validation = ValidationActivities(app)
        delivery = DeliveryActivities(app, self._ledger, pause_after_write=pause_after_write)
        self._authorisation = AuthorisationActivities(self._ledger)
        super().__init__(
            "handoff",
            data_converter=pydantic_data_converter,
            interceptors=[LoggingContextInterceptor()],
            workflows=[HandoffWorkflow],
            activities=[
                recorder.record_stage_change,
                recorder.record_escalation,
                recorder.record_refusal,
                validation.run_lookups,
                delivery.deliver,
                self._authorisation.verify_decision,
            ],
            run_context=self._ledger_open,
        )

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        """Refuse an app that is not ready, a client that cannot carry Handoff's payloads, or a missing decision key;
        register the contracts."""
        self._app.raise_unless_ready()
        client = config.get("client")
        if client is not None and not issubclass(
            client.data_converter.payload_converter_class, pydantic_data_converter.payload_converter_class
        ):
            raise TypeError(
                "Handoff's payloads are pydantic models: connect the client with "
                "`data_converter=pydantic_data_converter` (from temporalio.contrib.pydantic), or give the plugin "
                "to the Client instead of the Worker (`Client.connect(..., plugins=[app.plugin()])`)."
            )
        self._authorisation.use_key(self._decision_key or decision_key(load_settings()))
        self._register_contracts(config.get("task_queue"))
        return super().configure_worker(config)

    @asynccontextmanager
    async def run_replayer(
        self,
        replayer: Replayer,
        histories: AsyncIterator[WorkflowHistory],
        next: Callable[
            [Replayer, AsyncIterator[WorkflowHistory]],
            AbstractAsyncContextManager[AsyncIterator[WorkflowReplayResult]],
        ],
    ) -> AsyncIterator[AsyncIterator[WorkflowReplayResult]]:
        """A replayer needs the app's contracts as much as a worker does; it has no task queue, so they are
        registered for any run, and only while it replays."""
        contracts = self._register_contracts(None)
        try:
            async with super().run_replayer(replayer, histories, next) as results:
                yield results
        finally:
            forget(contracts, None)

    def _register_contracts(self, task_queue: str | None) -> list[HandoffContract]:
        # Every version, not just the newest: a run finishes under the version it started with.
        contracts = self._app.every_version()
        for contract in contracts:
            register(contract, task_queue)
        return contracts

    @asynccontextmanager
    async def _ledger_open(self) -> AsyncIterator[None]:
        if self._owns_ledger:
            await asyncio.to_thread(create_schema, self._ledger)
        try:
            yield
        finally:
            if self._owns_ledger:
                self._ledger.dispose()

"""The app's Temporal plugin: Handoff joins any `Worker` the way temporalio's own integrations do.

    worker = Worker(client, task_queue="handoffs", plugins=[app.plugin()])

It adds the handoff workflow, the activities (look-ups, deliveries, ledger writes, notices through the app's notifiers)
bound to the app and the ledger, the local activity that authorises decisions (`verify_decision`, with the decision
key), the logging interceptor, and Handoff's data converter: pydantic payloads encrypted with the key derived from the
decision key (`handoff.workers.codec`). When a worker is built it runs the readiness gate (an app that is not ready
never polls), takes the decision key (so a worker without one never polls either), registers the app's contracts for the
workflow, and converts with that key whatever converter its client has: what a Handoff worker writes to Temporal's
history is always encrypted, even when the client it was given has no codec (such a client can still start runs; reading
their results needs the key, e.g. `Client.connect(..., plugins=[app.plugin()])`). A Replayer built with it decrypts with
the key but encrypts nothing, so replaying histories written before the codec needs no key at all. Workers and
replayers keep their workflow runner (temporalio's sandbox by default), wrapped so that each run asks it once per
command which serialization context applies, not once per payload pass (`handoff.workers.sandbox`).

When tracing is on (`HANDOFF_OTLP_ENDPOINT`, `handoff.workers.tracing`), the plugin adds the process's one tracing
interceptor to the clients and workers it configures (a worker whose client has it already uses the client's), so a
run started from a traced request joins its trace, and flushes the spans when a worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from temporalio.client import ClientConfig, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.plugin import SimplePlugin
from temporalio.worker import Replayer, ReplayerConfig, Worker, WorkerConfig, WorkflowReplayResult

from handoff.activities.authorisation import AuthorisationActivities
from handoff.activities.budget import BudgetActivities
from handoff.activities.compensation import CompensationActivities
from handoff.activities.delivery import DeliveryActivities
from handoff.activities.drift import DriftActivities
from handoff.activities.ledger.activities import LedgerActivities
from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.notifications import NotificationActivities
from handoff.activities.outbox import NoticeSender
from handoff.activities.schedules import ScheduleActivities
from handoff.activities.validation import ValidationActivities
from handoff.schemas.contract import HandoffContract
from handoff.workers.build_id import build_id
from handoff.workers.client import with_data_converter
from handoff.workers.codec import Keyring, handoff_data_converter
from handoff.workers.decisions import decision_key
from handoff.workers.interceptors import LoggingContextInterceptor
from handoff.workers.links import case_link, public_url
from handoff.workers.sandbox import caching_contexts
from handoff.workers.schedules import drift_opener, starter
from handoff.workers.settings import load_settings
from handoff.workers.tracing import Tracing, tracing_for
from handoff.workflows.drift import DriftCheckWorkflow
from handoff.workflows.handoff import HandoffWorkflow
from handoff.workflows.registered import forget, register
from handoff.workflows.schedules import ScheduleWorkflow

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
        """`key`: what decisions are verified with, and payloads encrypted with (through a key derived from it);
        default: the settings' (`HANDOFF_DECISION_KEY`, else the development key under `HANDOFF_HOME`), taken when a
        worker is built, or when a client or replayer first meets a payload that needs it."""
        self._app = app
        self._decision_key = key
        # A ledger given as an engine belongs to the caller; one made here from a URL is migrated and disposed here.
        self._owns_ledger = not isinstance(ledger, Engine)
        self._ledger = ledger if isinstance(ledger, Engine) else make_engine(ledger or load_settings().ledger_url)
        notifications = NotificationActivities(app, self._ledger, link=self._case_link)
        # Notices about cases are queued with the ledger write they go with, and sent by this outbox sender.
        self._outbox = NoticeSender(self._ledger, notifications.send)
        recorder = LedgerActivities(self._ledger, notice_queued=self._outbox.wake)
        validation = ValidationActivities(app, self._ledger)
        delivery = DeliveryActivities(app, self._ledger, pause_after_write=pause_after_write)
        # The same test pause after an ordered delivery's undo: a worker killed there must undo nothing twice.
        compensation = CompensationActivities(app, self._ledger, pause_after_undo=pause_after_write)
        self._authorisation = AuthorisationActivities(self._ledger)
        # Registered even when the app notifies nobody: runs from before the outbox start it (it then sends nothing),
        # and every run for its SLA warnings.
        # A hold's notice links the inbox's case list, where held handoffs are shown with their figures.
        budget = BudgetActivities(self._ledger, app, link=lambda: self._case_link("").removesuffix("/cases/"))
        # A schedule's firing starts its runs through the same edge as an event (`handoff.workers.schedules`).
        schedules = ScheduleActivities(starter(app))
        # A drift check reads the app's sources and targets, and opens drift runs of its handoffs.
        drift = DriftActivities(app, self._ledger, drift_opener(app))
        self._public_url: str | None = None
        self._tracing: Tracing | None = None
        self._tracing_read = False
        super().__init__(
            "handoff",
            data_converter=self._data_converter,
            interceptors=[LoggingContextInterceptor()],
            workflows=[HandoffWorkflow, ScheduleWorkflow, DriftCheckWorkflow],
            workflow_runner=caching_contexts,
            activities=[
                recorder.record_stage_change,
                recorder.record_escalation,
                recorder.record_refusal,
                recorder.record_first_approval,
                validation.run_lookups,
                delivery.deliver,
                compensation.undo_delivery,
                self._authorisation.verify_decision,
                notifications.notify_owners,
                budget.check_budget,
                budget.notify_budget_hold,
                schedules.fire_schedule,
                drift.find_drift,
                drift.open_drift_cases,
            ],
            run_context=self._running,
        )

    def configure_client(self, config: ClientConfig) -> ClientConfig:
        """Handoff's converter; the tracing interceptor when tracing is on, once even if the client had it."""
        self._read_tracing()
        config = super().configure_client(config)
        interceptors = config.get("interceptors") or []
        config["interceptors"] = [i for n, i in enumerate(interceptors) if not any(i is j for j in interceptors[:n])]
        return config

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        """Refuse an app that is not ready or a missing decision key; convert and encrypt with the decision key's
        payload key, whatever the client's converter; register the contracts; name the build (`build_id.py`)."""
        self._app.raise_unless_ready()
        self._read_tracing()
        key = self._key()
        self._authorisation.use_key(key)
        client = config.get("client")
        if client is not None:
            # A worker converts with its client's converter: give it one with this key, so that nothing the worker
            # writes is in clear, whatever client it was given.
            config["client"] = with_data_converter(
                client, handoff_data_converter(Keyring.of(key), client.data_converter)
            )
        contracts = self._register_contracts(config.get("task_queue"))
        config = super().configure_worker(config)
        if not any(config.get(own) for own in ("build_id", "deployment_config", "use_worker_versioning")):
            config["build_id"] = build_id(config.get("workflows") or [], contracts)
        return config

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        """Decrypt with the payload key, taken only when a history holds an encrypted payload; encrypt nothing, since
        a replay sends nothing to Temporal."""
        config = super().configure_replayer(config)
        config["data_converter"] = handoff_data_converter(self._keyring, config.get("data_converter"), encrypt=False)
        return config

    def _data_converter(self, existing: DataConverter | None) -> DataConverter:
        """A client's converter: Handoff's, on top of the one it was given."""
        return handoff_data_converter(self._keyring, existing)

    def _case_link(self, case_id: str) -> str:
        """The case's inbox page, at `HANDOFF_PUBLIC_URL` (read with the first notice, like the decision key)."""
        if self._public_url is None:
            self._public_url = public_url(load_settings())
        return case_link(self._public_url, case_id)

    def _read_tracing(self) -> None:
        """Add the process's tracing interceptor, when tracing is on: read when the plugin first configures a client
        or worker (like the decision key), not when it is made."""
        if self._tracing_read:
            return
        self._tracing_read = True
        self._tracing = tracing_for(load_settings())
        if self._tracing is not None:
            self.interceptors = [*(self.interceptors or []), self._tracing.interceptor]

    def _keyring(self) -> Keyring:
        return Keyring.of(self._key())

    def _key(self) -> bytes:
        return self._decision_key or decision_key(load_settings())

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

    async def run_worker(self, worker: Worker, next: Callable[[Worker], Awaitable[None]]) -> None:
        """Run the worker, and beside it the outbox sender, in the ledger's context (a replayer sends nothing)."""

        async def with_outbox(worker: Worker) -> None:
            sending = asyncio.create_task(self._outbox.run(), name="handoff-outbox")
            try:
                await next(worker)
            finally:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending

        await super().run_worker(worker, with_outbox)

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        async with self._ledger_open():
            try:
                yield
            finally:
                if self._tracing is not None:
                    # A worker process leaves by `os._exit`, which runs no exit handler: export what is batched now.
                    await asyncio.to_thread(self._tracing.flush)

    @asynccontextmanager
    async def _ledger_open(self) -> AsyncIterator[None]:
        if self._owns_ledger:
            await asyncio.to_thread(create_schema, self._ledger)
        try:
            yield
        finally:
            if self._owns_ledger:
                self._ledger.dispose()

"""`Handoffs`: the one object through which a user's package brings its handoffs to the engine.

    app = Handoffs(groups=[OperatorGroup(name="front-desk")])
    app.source("scheduling")                       # sends events, owns records; Handoff never writes to it
    app.system("billing", BillingAdapter())        # a target, reached through the user's adapter

    @app.lookup("scheduling.dentist_exists")       # sync or async; gets the field's value
    def dentist_exists(value: str) -> bool: ...

    app.add(CONTRACT)
    Worker(client, task_queue="handoffs", plugins=[app.plugin()])

Every entry point (`handoff check|worker|api|... --app module:attr`) loads this object, and the readiness gate
checks its contracts against what it registers, so `handoff check` and the worker always agree.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from handoff.activities.adapter import SystemAdapter
from handoff.activities.user_code import UnknownName, call
from handoff.schemas.contract import Catalog, HandoffContract, OperatorGroup
from handoff.schemas.drift import DriftReadability
from handoff.schemas.findings import CatalogReadiness, Registries
from handoff.schemas.systems import TargetField
from handoff.workers.lock import LockFile, earlier_versions, read_lock
from handoff.workflows.readiness import check_catalog

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from handoff.activities.notifications import Notifier
    from handoff.workers.plugin import HandoffPlugin

F = TypeVar("F", bound=Callable[..., Any])

APP_VARIABLE = "HANDOFF_APP"


class AppNotReady(Exception):
    """A contract of the app is not ready; the worker will not run it. Carries the gate's findings."""

    def __init__(self, readiness: CatalogReadiness) -> None:
        self.readiness = readiness
        lines = [f"{f.contract}: [{f.kind.value}] {f.subject}: {f.message}" for f in readiness.findings]
        super().__init__("The app is not ready; the worker refuses to start:\n" + "\n".join(lines))


class Handoffs:
    """A user's handoffs: contracts, operator groups, systems with their adapters, look-ups and transforms."""

    def __init__(
        self,
        *,
        groups: Iterable[OperatorGroup] = (),
        contracts: Iterable[HandoffContract] = (),
        lock_file: Path | str | None = None,
    ) -> None:
        """
        Args:
            groups: the operator groups contracts may name.
            contracts: the handoffs (more with `add`).
            lock_file: where `handoff lock` records every contract version (commit it with your code); with it, a
                changed contract must get a new version, and runs of older versions keep their rules.
        """
        self._groups: list[OperatorGroup] = list(groups)
        self._versions: dict[str, dict[int, HandoffContract]] = {}
        self.lock_file = Path(lock_file) if lock_file is not None else None
        self._sources: set[str] = set()
        self._adapters: dict[str, SystemAdapter] = {}
        self._lookups: dict[str, Callable[[Any], Any]] = {}
        self._transforms: dict[str, Callable[[Any], Any]] = {}
        self._scheduled: dict[str, Callable[[Any], Any]] = {}
        self._readers: dict[str, Callable[[Any], Any]] = {}
        self._notifiers: dict[str, Notifier] = {}
        self.add(*contracts)

    # -- what a user registers ----------------------------------------------------------------------------------------

    def add(self, *contracts: HandoffContract) -> None:
        """Run these contracts. New events start a handoff's newest version; an older version added too (or kept in
        the lock file) finishes the runs that started under it."""
        for contract in contracts:
            versions = self._versions.setdefault(contract.name, {})
            if contract.version in versions:
                raise ValueError(f"the app already has {contract.name} v{contract.version}")
            versions[contract.version] = contract

    def group(self, group: OperatorGroup) -> None:
        """Declare an operator group that contracts may name as exception owner or escalation step."""
        self._groups.append(group)

    def source(self, name: str) -> None:
        """A system that sends events and owns records, which Handoff never writes to: it needs no adapter."""
        self._sources.add(name)

    def system(self, name: str, adapter: SystemAdapter) -> None:
        """A target system and the adapter that writes to it (idempotently, by record key)."""
        if not callable(getattr(adapter, "write", None)):
            raise TypeError(f"the adapter for {name!r} has no write(record_key, fields) method")
        if name in self._adapters:
            raise ValueError(f"the app already has an adapter for the system {name!r}")
        accepts = getattr(adapter, "accepts", None)
        if accepts is not None and not (
            isinstance(accepts, Mapping)
            and all(isinstance(key, str) and isinstance(value, TargetField) for key, value in accepts.items())
        ):
            raise TypeError(
                f"the adapter for {name!r} declares `accepts` as {type(accepts).__name__}: it must map each field "
                "name to a TargetField, e.g. {'guest_name': TargetField.text(max_length=255)}"
            )
        self._adapters[name] = adapter

    def notify(self, notifier: Notifier) -> None:
        """Tell a case's owner group through `notifier` when the case opens, escalates, or has a fifth of its SLA
        left: a `WebhookNotifier`, `SlackNotifier` or `EmailNotifier` (`handoff.workers.notifiers`), or any object
        with a unique `name` and `async send(notification)`. Each notice goes through each notifier at most once."""
        name = getattr(notifier, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a notifier needs a `name` (the ledger records its notices under it), got {name!r}")
        if not callable(getattr(notifier, "send", None)):
            raise TypeError(f"the notifier {name!r} has no send(notification) method")
        if name in self._notifiers:
            raise ValueError(f"the app already has a notifier named {name!r}: give the second one another `name=`")
        self._notifiers[name] = notifier

    def lookup(self, name: str) -> Callable[[F], F]:
        """Register a look-up a `Lookup` rule may name: `fn(value) -> bool`, sync or async; True means it holds."""
        return self._registrar(self._lookups, name)

    def transform(self, name: str) -> Callable[[F], F]:
        """Register a conversion a `SyncTarget` may apply to a field: `fn(value) -> value`, sync or async."""
        return self._registrar(self._transforms, name)

    def scheduled(self, name: str) -> Callable[[F], F]:
        """Register what a contract's `Schedule(source=name)` starts runs with: `fn(fired_at) -> payload` (or a list
        of payloads, one run each), sync or async; `fired_at` is the firing's scheduled time (UTC)."""
        return self._registrar(self._scheduled, name)

    def reader(self, system: str) -> Callable[[F], F]:
        """Register how a drift check reads the source of truth `system`: `fn(key) -> record | None`, sync or async,
        given a run's dedupe key value, returning the record as the trigger's payload has it now (None: gone)."""
        return self._registrar(self._readers, system)

    @staticmethod
    def _registrar(into: dict[str, Callable[[Any], Any]], name: str) -> Callable[[F], F]:
        if name in into:
            raise ValueError(f"the app already registers {name!r}: one function per name")

        def register(function: F) -> F:
            into[name] = function
            return function

        return register

    # -- what the engine reads ----------------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The groups and each handoff's newest version: what new events start, and what the gate checks."""
        newest = tuple(versions[max(versions)] for versions in self._versions.values())
        return Catalog(groups=tuple(self._groups), contracts=newest)

    def every_version(self) -> list[HandoffContract]:
        """Every contract version this app can run: added ones, and older ones rebuilt from the lock file."""
        added = [contract for versions in self._versions.values() for contract in versions.values()]
        have = {(contract.name, contract.version) for contract in added}
        rebuilt = earlier_versions(list(self.catalog.contracts), self.lock())
        return added + [c for c in rebuilt if (c.name, c.version) not in have]

    def lock(self) -> LockFile:
        """The app's lock file as it is on disk (empty without one)."""
        return read_lock(self.lock_file) if self.lock_file is not None else LockFile()

    @property
    def registries(self) -> Registries:
        return Registries(
            lookups=frozenset(self._lookups),
            sources=frozenset(self._sources),
            targets=frozenset(self._adapters),
            transforms=frozenset(self._transforms),
            scheduled=frozenset(self._scheduled),
            accepts={
                name: dict(accepts)
                for name, adapter in self._adapters.items()
                if (accepts := getattr(adapter, "accepts", None)) is not None
            },
            methods={name: _public_methods(adapter) for name, adapter in self._adapters.items()},
        )

    @property
    def notifiers(self) -> tuple[Notifier, ...]:
        """The notifiers `notify` configured, in order: the plugin's `notify_owners` activity sends through each."""
        return tuple(self._notifiers.values())

    @property
    def drift_readability(self) -> DriftReadability:
        """The systems this app can read for drift checks: those with a reader, and targets whose adapter can read."""
        return DriftReadability(
            readers=frozenset(self._readers),
            readable_targets=frozenset(
                name for name, adapter in self._adapters.items() if callable(getattr(adapter, "read", None))
            ),
        )

    def readiness(self) -> CatalogReadiness:
        """The readiness gate on every contract, against what this app registers and its lock file: `handoff check`
        and the worker."""
        return check_catalog(
            self.catalog, registries=self.registries, locked=self.lock().hashes(), drift=self.drift_readability
        )

    def raise_unless_ready(self) -> None:
        readiness = self.readiness()
        if not readiness.ready:
            raise AppNotReady(readiness)

    def adapter(self, system: str) -> SystemAdapter:
        """The adapter registered for `system`; `UnknownName` (a `KeyError`) listing the known ones otherwise."""
        try:
            return self._adapters[system]
        except KeyError:
            raise UnknownName(f"the app has no adapter for the system {system!r}{_known(self._adapters)}") from None

    async def look_up(self, name: str, value: Any) -> bool:
        """Run the look-up `name` on `value`."""
        try:
            look_up = self._lookups[name]
        except KeyError:
            raise UnknownName(f"the app registers no look-up named {name!r}{_known(self._lookups)}") from None
        return bool(await call(look_up, value))

    async def transformed(self, name: str, value: Any) -> Any:
        """Apply the transform `name` to `value`."""
        try:
            transform = self._transforms[name]
        except KeyError:
            raise UnknownName(f"the app registers no transform named {name!r}{_known(self._transforms)}") from None
        return await call(transform, value)

    async def scheduled_payloads(self, name: str, fired_at: datetime) -> list[Any]:
        """What the scheduled function `name` returns for the firing at `fired_at`, as a list of payloads."""
        try:
            source = self._scheduled[name]
        except KeyError:
            raise UnknownName(
                f"the app registers no scheduled function named {name!r}{_known(self._scheduled)}"
            ) from None
        payloads = await call(source, fired_at)
        return list(payloads) if isinstance(payloads, list | tuple) else [payloads]

    async def read_source(self, system: str, key: str) -> Mapping[str, Any] | None:
        """The source of truth `system`'s record for the dedupe key value `key` now, from its reader; None: gone."""
        try:
            reader = self._readers[system]
        except KeyError:
            raise UnknownName(f"the app registers no reader for the system {system!r}{_known(self._readers)}") from None
        record = await call(reader, key)
        if record is not None and not isinstance(record, Mapping):
            raise TypeError(f"the reader of {system!r} returned a {type(record).__name__}: a record (a dict) or None")
        return record

    async def read_copy(self, system: str, record_key: str) -> Mapping[str, Any] | None:
        """The copy the target `system` holds under `record_key` (a run's workflow id), from its adapter's `read`."""
        read = getattr(self.adapter(system), "read", None)
        if not callable(read):
            raise UnknownName(f"the adapter of {system!r} has no read(record_key) method")
        record = await call(read, record_key)
        if record is not None and not isinstance(record, Mapping):
            raise TypeError(f"the adapter of {system!r} read a {type(record).__name__}: a record (a dict) or None")
        return record

    def plugin(
        self, *, ledger: Engine | str | None = None, decision_key: bytes | None = None, pause_after_write: float = 0.0
    ) -> HandoffPlugin:
        """A Temporal plugin for any `Worker` (and `Client`): the handoff workflow and activities for this app.

        Args:
            ledger: the ledger's engine (the caller keeps it), or its URL; default: `HANDOFF_DATABASE_URL`, else
                SQLite under `HANDOFF_HOME`.
            decision_key: what decisions are verified with; default: `HANDOFF_DECISION_KEY` (see
                `handoff.workers.decisions`).
            pause_after_write: tests only: a pause between a delivery's write and its acknowledgement.
        """
        from handoff.workers.plugin import HandoffPlugin

        return HandoffPlugin(self, ledger=ledger, key=decision_key, pause_after_write=pause_after_write)


def load_app(spec: str) -> Handoffs:
    """The `Handoffs` named by `module:attribute`, imported from the current directory as uvicorn does.

    Raises:
        ValueError: the spec is malformed, the module cannot be imported, or the attribute is not a `Handoffs`.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"expected MODULE:ATTRIBUTE, such as myhandoffs:app, got {spec!r}")
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import {module_name!r}: {error}") from error
    found = getattr(module, attribute, None)
    if not isinstance(found, Handoffs):
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise ValueError(f"{spec} is {what}, not a handoff.Handoffs")
    return found


def _public_methods(adapter: object) -> frozenset[str]:
    """The methods a contract may name on an adapter (`SyncTarget.undo`): public and callable."""
    return frozenset(
        name for name in dir(adapter) if not name.startswith("_") and callable(getattr(adapter, name, None))
    )


def _known(names: Sequence[str] | dict[str, Any]) -> str:
    listed = sorted(names)
    if not listed:
        return " (it registers none)"
    return f" (known: {', '.join(listed)})"

"""A handoff delivered in order to three systems (crm, pos, kitchen), the kitchen refusing while told to: the app of
the compensation tests, in the test's own worker and in `handoff worker` processes they kill.

The systems are fakes at the adapter boundary, where a real CRM or POS would be. They keep their records, and a log
of every write and undo that changed something, in one SQLite file: counts survive a killed process, and a retried
undo that finds nothing to undo leaves no line, so the log says how many undos really happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from handoff import Handoffs, InvalidFieldValue, WriteOutcome
from handoff.schemas.contract import Sync, SyncTarget
from tests.workflows.sample_contracts import GROUPS, ready_contract

SYSTEMS_FILE_VARIABLE = "COMPENSATION_SYSTEMS"
"""Where a `handoff worker` process finds the systems' file (the test sets it); default: under `HANDOFF_HOME`."""

FIELDS = ("booking.id", "booking.party_size")
ORDER = ("crm", "pos", "kitchen")


class SystemsFile:
    """The three systems' records, the log of what changed, and which systems refuse every write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the file's lock from its start: two workers never interleave."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "CREATE TABLE IF NOT EXISTS records (system TEXT, key TEXT, fields TEXT, PRIMARY KEY (system, key))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, system TEXT, action TEXT)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS refusing (system TEXT PRIMARY KEY)")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def log(self) -> list[tuple[str, str]]:
        """(system, "write" or "undo") for each write and undo that changed something, oldest first."""
        with self.transaction() as db:
            return [(system, action) for system, action in db.execute("SELECT system, action FROM log ORDER BY id")]

    def holds(self, system: str) -> list[str]:
        """The record keys `system` holds now."""
        with self.transaction() as db:
            return [key for (key,) in db.execute("SELECT key FROM records WHERE system = ?", (system,))]

    def refuse(self, system: str, *, refusing: bool = True) -> None:
        """Make `system` refuse every write (or take them again)."""
        with self.transaction() as db:
            if refusing:
                db.execute("INSERT OR IGNORE INTO refusing VALUES (?)", (system,))
            else:
                db.execute("DELETE FROM refusing WHERE system = ?", (system,))


class FileBackedSystem:
    """A target system that writes once per key, refuses while told to, and undoes a write with `cancel`."""

    def __init__(self, name: str, systems: SystemsFile) -> None:
        self.name = name
        self.systems = systems

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        with self.systems.transaction() as db:
            if db.execute("SELECT 1 FROM refusing WHERE system = ?", (self.name,)).fetchone():
                value = fields.get("booking_party_size")
                raise InvalidFieldValue(self.name, "booking_party_size", value, "a party the kitchen can cook for")
            if db.execute("SELECT 1 FROM records WHERE system = ? AND key = ?", (self.name, record_key)).fetchone():
                return WriteOutcome.ALREADY_WRITTEN
            db.execute("INSERT INTO records VALUES (?, ?, ?)", (self.name, record_key, json.dumps(dict(fields))))
            db.execute("INSERT INTO log (system, action) VALUES (?, 'write')", (self.name,))
        return WriteOutcome.WRITTEN

    def cancel(self, record_key: str) -> None:
        """Idempotent: a key already cancelled, or never written, changes nothing (and logs nothing)."""
        with self.systems.transaction() as db:
            gone = db.execute("DELETE FROM records WHERE system = ? AND key = ?", (self.name, record_key)).rowcount
            if gone:
                db.execute("INSERT INTO log (system, action) VALUES (?, 'undo')", (self.name,))


class UnanswerableUndo(FileBackedSystem):
    """A system whose undo never answers: its write must stay, and the case say why."""

    def cancel(self, record_key: str) -> None:
        raise ConnectionError(f"the {self.name} system is not answering")


def build_app(
    systems: SystemsFile,
    *,
    undo: Mapping[str, str | None] | None = None,
    attempts: int = 2,
    adapters: Mapping[str, FileBackedSystem] | None = None,
) -> Handoffs:
    """The ordered handoff to crm, pos, kitchen; crm and pos undo with `cancel` unless `undo` says otherwise."""
    undo = {"crm": "cancel", "pos": "cancel", "kitchen": None} if undo is None else undo
    targets = tuple(
        SyncTarget(system=system, fields=FIELDS, undo=undo.get(system), attempts=attempts) for system in ORDER
    )
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(sync=Sync(targets=targets, ordered=True)),))
    app.source("bookings")
    for system in ORDER:
        app.system(system, (adapters or {}).get(system) or FileBackedSystem(system, systems))
    return app


def _systems_of_this_process() -> SystemsFile:
    path = os.environ.get(SYSTEMS_FILE_VARIABLE) or str(Path(os.environ.get("HANDOFF_HOME", ".handoff")) / "systems.db")
    return SystemsFile(Path(path))


app = build_app(_systems_of_this_process())
"""For `handoff worker --app tests.runtime.compensation_app:app` (the file is only opened when a system is used)."""

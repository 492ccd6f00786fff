"""The contract language: one typed, written answer to each of the six questions a handoff must answer.

1. `Trigger`         which event triggers it (typed payload, dedupe key, optional schedule);
2. `source_of_truth` which system owns each entity the payload carries;
3. `Sync`            which fields go to which system, and which deliberately stay local;
4. `rules`           what happens to incomplete or inconsistent data (see `schemas.rules`);
5. `ExceptionPolicy` who owns exceptions: group, decisions, SLA, escalation, end-of-chain decision;
6. `Gain`            which measurable gain is expected.

Beside the six answers a contract may mark its `personal` fields: reads mask them for anyone outside the group that
owns the case (see README, "Personal data").

A contract may be written down incompletely: the model accepts it so that the readiness gate can say, in plain
words, which question is still unanswered. Nothing runs until the gate says READY.

Payloads are pydantic models whose top-level fields are entities (nested models), so every field path reads
`entity.field`: `reservation.party_size`, `guest.allergies`.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from datetime import timedelta
from enum import StrEnum
from typing import Any, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
)

from handoff.schemas.rules import Rule


class DecisionKind(StrEnum):
    """What an operator may decide about an exception case."""

    APPROVE = "approve"
    """Deliver the payload as it is, recorded as an override of the rules."""
    REJECT = "reject"
    """End the run; nothing is delivered."""
    CORRECT = "correct"
    """Patch payload fields, then validate again (which may open a new case)."""
    RETRY = "retry"
    """Run the validation again unchanged, for when the upstream system was fixed."""


class Measure(StrEnum):
    """Ledger measures a gain can be tracked by. For each of them, lower is better."""

    CYCLE_TIME = "cycle_time"
    """Seconds from the event to delivery (p50 over delivered runs)."""
    EXCEPTION_RATE = "exception_rate"
    """Share of runs that opened at least one exception case, in percent."""
    MANUAL_TOUCHES = "manual_touches"
    """Operator decisions per run."""


class Overlap(StrEnum):
    """What a schedule does when it fires while its previous firing is still starting runs (Temporal's overlap
    policy)."""

    SKIP = "skip"
    """Drop the new firing."""
    BUFFER_ONE = "buffer-one"
    """Keep one firing to run after the current one; drop the rest."""
    BUFFER_ALL = "buffer-all"
    """Run every firing, one after another."""
    CANCEL_OTHER = "cancel-other"
    """Cancel the current firing, then run the new one."""
    TERMINATE_OTHER = "terminate-other"
    """Terminate the current firing, then run the new one."""
    ALLOW_ALL = "allow-all"
    """Run firings side by side."""


class Schedule(BaseModel):
    """When a handoff starts on a clock, and where each firing's payload comes from.

        Schedule(cron="0 6 * * *", source="closed_orders")              # every day at 06:00 UTC
        Schedule(every=timedelta(minutes=15), source="open_tickets", overlap=Overlap.BUFFER_ONE)

    Each firing calls the app's function `source` (`@app.scheduled("closed_orders")`, given the firing's scheduled
    time) and starts the handoff with the payload it returns (or one run per payload, for a list), checked as any
    event's payload is. The model takes what is written; the readiness gate says what is wrong with it.
    """

    model_config = ConfigDict(frozen=True)

    cron: str | None = Field(default=None, description="A cron expression (five fields, UTC), or @daily, @hourly...")
    every: timedelta | None = Field(default=None, description="An interval, instead of `cron`.")
    source: str | None = Field(default=None, description="The registered function each firing takes its payload from.")
    overlap: Overlap = Field(default=Overlap.SKIP, description="What a firing does while the previous one still runs.")
    catchup_window: timedelta = Field(
        default=timedelta(minutes=10),
        description="How late a firing may still run after Temporal (or every worker) was down; older ones are dropped.",
    )

    @model_serializer(mode="wrap")
    def _cron_only_as_written(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A schedule that says only its cron serializes as the bare string it was once written as, so contracts
        # written that way keep their content hash (and their lock).
        if self.cron is not None and self == Schedule(cron=self.cron):
            return self.cron
        return handler(self)


MAX_DEDUPE_KEY_LENGTH = 200
"""The longest dedupe key the edge takes: the workflow id `<handoff>/<key>` must stay well inside Temporal's limits."""


class Trigger(BaseModel):
    """Question 1: the event that starts the handoff."""

    model_config = ConfigDict(frozen=True)

    event: str = Field(min_length=1, description="The event name, e.g. 'reservation.confirmed'.")
    payload: type[BaseModel] = Field(description="The pydantic model every event payload is checked against.")
    dedupe_key: str | None = Field(
        default=None, description="Field path whose value makes an event unique; a repeat finds the same run."
    )
    schedule: Schedule | None = Field(
        default=None,
        description=(
            "Start the handoff on a clock too: a Temporal Schedule (`handoff schedules sync`) whose each firing starts "
            "a run with the payload a registered function returns. A bare cron string still reads as "
            "`Schedule(cron=...)`."
        ),
    )

    @field_validator("schedule", mode="before")
    @classmethod
    def _cron_string_is_a_schedule(cls, value: Any) -> Any:
        # The contract language once took a bare cron string here; such contracts still load.
        return Schedule(cron=value) if isinstance(value, str) else value

    @field_serializer("payload")
    def _serialize_payload(self, payload: type[BaseModel]) -> dict[str, Any]:
        # The class itself cannot be serialized; its fields are what the content hash must cover.
        return model_fingerprint(payload)


def model_fingerprint(model: type[BaseModel], depth: int = 0) -> dict[str, Any]:
    """A model's name and fields (types, defaults, constraints, nested models), stable across processes.

    Cheaper than `model_json_schema()` by two orders of magnitude, which matters when a catalog has many contracts.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        factory = info.default_factory
        fields[name] = {
            "type": _annotation_fingerprint(info.annotation, depth),
            "required": info.is_required(),
            "default": repr(info.default) if factory is None else getattr(factory, "__qualname__", "factory"),
            "constraints": [repr(item) for item in info.metadata],
        }
    return {"model": f"{model.__module__}.{model.__qualname__}", "fields": fields}


def _annotation_fingerprint(annotation: Any, depth: int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_fingerprint(annotation, depth + 1) if depth < 8 else annotation.__qualname__
    arguments = get_args(annotation)
    if arguments:
        origin = get_origin(annotation)
        return {
            "origin": getattr(origin, "__qualname__", repr(origin)),
            "args": [_annotation_fingerprint(argument, depth) for argument in arguments],
        }
    return getattr(annotation, "__qualname__", repr(annotation))


class SyncTarget(BaseModel):
    """Question 3, for one system: the payload fields it receives."""

    model_config = ConfigDict(frozen=True)

    system: str = Field(min_length=1)
    fields: tuple[str, ...] = Field(description="Payload field paths (`entity.field`) written to this system.")
    rename: dict[str, str] = Field(
        default_factory=dict, description="Field path -> the name the target system uses for it."
    )
    transforms: dict[str, str] = Field(
        default_factory=dict,
        description="Field path -> a transform the app registers (`@app.transform`), applied to the value on delivery.",
    )
    attempts: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="How many times delivery tries a write the system does not answer (a timeout, a connection "
        "error) before the run opens an exception case. A refusal (a value the system cannot store) opens one at once.",
    )
    undo: str | None = Field(
        default=None,
        min_length=1,
        description="With `Sync(ordered=True)`: the adapter method that undoes this run's write (`undo(record_key)`), "
        "called when a later target does not take the record. Without it, the write stays.",
    )

    def target_name(self, field_path: str) -> str:
        """The name a field is written under: its rename, else the path with `_` for `.`."""
        return self.rename.get(field_path, field_path.replace(".", "_"))


class DriftCheck(BaseModel):
    """Check, on a clock, that the records a handoff delivered still match their source of truth.

        Sync(targets=[...], drift_check=DriftCheck(every=timedelta(hours=1)))

    Each check reads, for the runs delivered within `lookback` (newest first, at most `limit`), the source's record
    (`@app.reader(system)`) and each target's copy (its adapter's `read(record_key)`), and opens a drift case, owned
    by the contract's exception owner, naming every synced field that differs. The model takes what is written; the
    readiness gate says what is wrong with it.
    """

    model_config = ConfigDict(frozen=True)

    every: timedelta = Field(description="How often the check runs (a Temporal Schedule, `handoff schedules sync`).")
    lookback: timedelta = Field(default=timedelta(days=7), description="How far back delivered runs are checked.")
    limit: int = Field(default=500, description="At most this many runs per check, the newest first.")


class Sync(BaseModel):
    """Question 3: what travels where, and what deliberately stays where it is."""

    model_config = ConfigDict(frozen=True)

    targets: tuple[SyncTarget, ...] = ()
    local: tuple[str, ...] = Field(default=(), description="Field paths that are never synced, on purpose.")
    ordered: bool = Field(
        default=False,
        description="Write the targets one at a time, in the order listed; when one does not take the record, undo "
        "the writes made before it (their `undo`), last first. Default: all targets at once.",
    )
    drift_check: DriftCheck | None = Field(
        default=None, description="Compare delivered copies with their source of truth on a clock (drift cases)."
    )


class FourEyes(BaseModel):
    """Two operators of the owner group must agree before some decisions take effect ("four eyes").

    The first approval (or correction) waits in the case; it takes effect when another operator of the group that
    owns the case sends the same decision (and the same corrected values). A rejection needs no second pair of eyes.
    """

    model_config = ConfigDict(frozen=True)

    when: Rule | None = Field(
        default=None,
        description="Only when this rule, read as a condition, holds for the payload (e.g. a Min on the order's "
        "total); always when omitted.",
    )
    decisions: frozenset[DecisionKind] = Field(default=frozenset({DecisionKind.APPROVE, DecisionKind.CORRECT}))

    @field_serializer("decisions")
    def _serialize_decisions(self, decisions: frozenset[DecisionKind]) -> list[str]:
        return sorted(decision.value for decision in decisions)  # sorted: the content hash must not vary


class ExceptionBudget(BaseModel):
    """A tolerance for bad data: past it, the handoff's new runs hold before delivery until an operator decides.

    Over the last `window`, at most `max_case_rate` of the handoff's runs may open an exception case. Once at least
    `min_runs` runs were received in the window and more than that share opened a case, the handoff is held: every
    run that reaches delivery waits (stage `held`), and the owner group hears about it, until an operator resumes the
    handoff (the held runs deliver) or rejects the held runs. A data source gone bad then floods nobody's system.
    """

    model_config = ConfigDict(frozen=True)

    max_case_rate: float = Field(gt=0, lt=1, description="At most this share of runs opens a case (0.2: a fifth).")
    window: timedelta = Field(default=timedelta(hours=1), description="The rolling window the share is taken over.")
    min_runs: int = Field(default=20, ge=1, description="Runs the window must hold before the share counts.")

    @field_validator("window")
    @classmethod
    def _positive_window(cls, window: timedelta) -> timedelta:
        if window <= timedelta(0):
            raise ValueError("the budget's window must be longer than zero")
        return window


class ExceptionPolicy(BaseModel):
    """Question 5: who owns an exception case, and what happens when nobody decides."""

    model_config = ConfigDict(frozen=True)

    owner: str | None = Field(default=None, description="The operator group that decides cases first.")
    allowed: frozenset[DecisionKind] = Field(default=frozenset(DecisionKind))

    @field_serializer("allowed")
    def _serialize_allowed(self, allowed: frozenset[DecisionKind]) -> list[str]:
        # Sorted: a set's order changes with the process's hash seed, and the content hash must not.
        return sorted(decision.value for decision in allowed)

    sla: timedelta = Field(default=timedelta(hours=4), description="How long each group has before escalation.")
    escalation: tuple[str, ...] = Field(default=(), description="Groups that take over, in order, as SLAs pass.")
    on_timeout: DecisionKind | None = Field(
        default=None, description="The decision applied when the last group's SLA passes too."
    )
    four_eyes: FourEyes | None = Field(
        default=None, description="Decisions that need a second operator of the owner group to agree."
    )
    budget: ExceptionBudget | None = Field(
        default=None, description="How many runs may open a case before the handoff's new runs hold for an operator."
    )

    @property
    def chain(self) -> tuple[str, ...]:
        """Every group that may own a case, in order: the owner, then the escalation chain."""
        return ((self.owner,) if self.owner else ()) + self.escalation


class Gain(BaseModel):
    """Question 6: the measurable operational gain this handoff is for."""

    model_config = ConfigDict(frozen=True)

    metric: str = Field(min_length=1, description="What is measured, in words.")
    unit: str = Field(min_length=1)
    measure: Measure
    baseline: float = Field(description="The figure before the handoff was automated.")
    target: float | None = Field(default=None, description="The figure the handoff must reach (lower is better).")


class OperatorGroup(BaseModel):
    """A group of operators who may decide exception cases. Groups are declared once, in the catalog."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    description: str = ""


_NOT_HASHED = {"personal"}
_HASHES_KEPT = 512
_HASHED: OrderedDict[int, tuple[HandoffContract, str]] = OrderedDict()
"""The hashes of the contracts hashed last, by identity: every trigger, run start and `status` query asks for its
contract's hash, and a contract is immutable (`model_copy` makes another object, hashed afresh). The entry holds the
contract, so its id cannot be another object's while the entry lives."""
"""Contract fields that change no run's behaviour, so no version: what `content_hash` leaves out."""


class HandoffContract(BaseModel):
    """One business handoff, written down. Its content hash is stamped on every run it starts."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9-]*$", description="Also the workflow type name.")
    version: int = Field(default=1, ge=1)
    description: str = ""
    trigger: Trigger | None = None
    source_of_truth: dict[str, str] = Field(default_factory=dict, description="Entity -> the system that owns it.")
    sync: Sync | None = None
    rules: tuple[Rule, ...] = ()
    exceptions: ExceptionPolicy | None = None
    gain: Gain | None = None
    personal: tuple[str, ...] = Field(
        default=(),
        description=(
            "Payload paths (`entity.field`, or a whole `entity`) that hold personal data: reads show their values "
            "only to operators of the group that owns the case, and mask them for everyone else."
        ),
    )

    def content_hash(self) -> str:
        """A stable hash of everything the contract says: any change to a rule, a sync or the payload changes it.

        Values left at their defaults are not part of it, so a field added to the contract language later (with a
        default) leaves every existing contract's hash, and so its lock, as it was.

        `personal` is left out too: a contract with personal marks hashes the same as without them. Marking a field
        personal changes what reads show, never what a run does, so it needs no new version and leaves locks valid.
        """
        known = _HASHED.get(id(self))
        if known is not None and known[0] is self:
            return known[1]
        said = self.model_dump(mode="json", exclude_defaults=True, exclude=_NOT_HASHED)
        canonical = json.dumps(said, sort_keys=True, separators=(",", ":"))
        content_hash = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        _HASHED[id(self)] = (self, content_hash)
        while len(_HASHED) > _HASHES_KEPT:
            _HASHED.popitem(last=False)
        return content_hash


class Catalog(BaseModel):
    """Every handoff and every operator group, declared in one place."""

    model_config = ConfigDict(frozen=True)

    groups: tuple[OperatorGroup, ...] = ()
    contracts: tuple[HandoffContract, ...] = ()

    def contract(self, name: str) -> HandoffContract:
        """The contract called `name`; a `KeyError` that lists the known names otherwise."""
        for contract in self.contracts:
            if contract.name == name:
                return contract
        known = ", ".join(c.name for c in self.contracts) or "none"
        raise KeyError(f"no handoff named {name!r} in the catalog (known: {known})")

    def for_event(self, event: str) -> HandoffContract:
        """The contract triggered by `event`; a `KeyError` that lists the known events otherwise."""
        for contract in self.contracts:
            if contract.trigger is not None and contract.trigger.event == event:
                return contract
        known = ", ".join(c.trigger.event for c in self.contracts if c.trigger) or "none"
        raise KeyError(f"no handoff is triggered by event {event!r} (known: {known})")

    @property
    def group_names(self) -> frozenset[str]:
        return frozenset(group.name for group in self.groups)

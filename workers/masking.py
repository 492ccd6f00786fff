"""What a read shows of a run's data: personal fields masked for whoever has no need to see them, and purged
snapshots gone whichever source answers.

A contract marks the payload paths that hold personal data (`HandoffContract.personal`). The people who need those
values are the operators deciding the case, so a read shows them only to an operator of a group that owns the case
now; everyone else (viewers, administrators, operators of other groups, a CLI without a token) sees `MASK` in their
place. The rule for a run is the same, with the groups that own its cases; a run that opened no case shows its data
to the groups its contract's exception chain names (owner, then escalation), the people who would decide it.

A masked value keeps its key, so a masked payload has the shape of the real one: a reader still sees which fields
were there, which rule broke on which field, and which fields a correction or a delivery touched, and a script that
reads `guest.name` finds a string instead of a missing key. An absent value (None) stays None: that a phone number
is missing is not personal data, and it is often why the case was opened.

Masked wherever a run's data appears: the payload, each case's payload, violations' values (a `Compare` holds both
sides), decision patches (refused attempts' too), and delivered fields, under the names each target system uses
(`SyncTarget.target_name`). Not masked: ids and dedupe keys (they name the run, `handoff/<key>`), and the words
people wrote (reasons, refusals, failures). When the contract of a run's handoff is not known (the CLI without
`--app`, a handoff the app no longer has), every value is masked: what is personal cannot be told.

Both edges use this module: the API with the caller of the request's token, the CLI with its operator token.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handoff.activities.ledger.purge import emptied
from handoff.schemas.api import CaseDetail, RunDetail
from handoff.schemas.cases import DecisionRecord, ExceptionCase, RefusedDecision, Violation
from handoff.schemas.contract import HandoffContract
from handoff.schemas.operators import Operator, Role
from handoff.schemas.runs import Delivery, HandoffStatus

MASK = "•••"
"""What a reader outside the owning group sees in place of a personal value."""


@dataclass(frozen=True)
class PersonalFields:
    """One handoff's personal data, as every version of its contract marks it."""

    paths: frozenset[str] = frozenset()
    """Payload paths marked personal; everything under a marked path is personal too."""
    delivered: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Target system -> the names personal fields are written under there."""
    chain: frozenset[str] = frozenset()
    """The groups of the contract's exception chain: who sees the data of a run that opened no case."""
    everything: bool = False
    """True when the contract is unknown: every value counts as personal."""

    def is_personal(self, path: str) -> bool:
        """Whether the value at this `entity.field` path is personal: marked, or inside a marked entity or model."""
        return self.everything or any(path == mark or path.startswith(mark + ".") for mark in self.paths)


UNKNOWN = PersonalFields(everything=True)
"""A handoff whose contract the reader does not have."""


class PersonalData:
    """Every handoff's personal fields, from the contract versions an app can run (`Handoffs.every_version()`).

    A field marked personal in any version counts in all of them: marking changes no run (and no content hash), so
    a mark added in a later version is as true of the runs that started before it. `None` for contracts means the
    reader does not know them (the CLI without an app): every handoff is `UNKNOWN`.
    """

    def __init__(self, contracts: Iterable[HandoffContract] | None) -> None:
        self.known = contracts is not None
        """False when the reader does not have the contracts: every value is masked for those who may not see."""
        versions: dict[str, list[HandoffContract]] = defaultdict(list)
        for contract in contracts or ():
            versions[contract.name].append(contract)
        self._fields = {name: _personal_fields(found) for name, found in versions.items()}

    def of(self, handoff: str) -> PersonalFields:
        """The handoff's personal fields; `UNKNOWN` (everything personal) for a handoff the reader does not know."""
        return self._fields.get(handoff, UNKNOWN)


def _personal_fields(versions: list[HandoffContract]) -> PersonalFields:
    marked = PersonalFields(paths=frozenset(path for contract in versions for path in contract.personal))
    delivered: dict[str, set[str]] = defaultdict(set)
    for contract in versions:
        for target in contract.sync.targets if contract.sync else ():
            delivered[target.system].update(
                target.target_name(path) for path in target.fields if marked.is_personal(path)
            )
    return PersonalFields(
        paths=marked.paths,
        delivered={system: frozenset(names) for system, names in delivered.items()},
        chain=frozenset(group for contract in versions if contract.exceptions for group in contract.exceptions.chain),
    )


def sees_personal_data(caller: Operator | None, groups: Collection[str]) -> bool:
    """Whether the caller may see personal values of data these groups own: an operator of one of them."""
    return caller is not None and caller.role is Role.OPERATOR and any(group in groups for group in caller.groups)


def shown_case(detail: CaseDetail, *, caller: Operator | None, personal: PersonalData) -> CaseDetail:
    """The case as this caller may read it: whole for an operator of the group that owns it now, else masked."""
    if sees_personal_data(caller, {detail.owner_group}):
        return detail
    fields = personal.of(detail.handoff)
    return detail.model_copy(
        update={
            "payload": _masked(detail.payload, "", fields),
            "violations": [_masked_violation(violation, fields) for violation in detail.violations],
            "decision": _masked_decision(detail.decision, fields) if detail.decision else None,
        }
    )


def shown_run(
    detail: RunDetail, *, caller: Operator | None, personal: PersonalData, purged_at: datetime | None = None
) -> RunDetail:
    """The run as this caller may read it: purged snapshots gone (Temporal may still hold them), then personal
    values masked unless the caller is an operator of a group that owns one of its cases (or, with no case, of its
    contract's exception chain)."""
    status = purged(detail.status) if purged_at is not None else detail.status
    fields = personal.of(status.handoff)
    owners = {case.owner_group for case in status.cases} if status.cases else fields.chain
    if not sees_personal_data(caller, owners):
        status = masked_status(status, fields)
    return detail.model_copy(update={"status": status})


def masked_status(status: HandoffStatus, fields: PersonalFields) -> HandoffStatus:
    """The run's status with every personal value masked."""
    return status.model_copy(
        update={
            "payload": _masked(status.payload, "", fields),
            "cases": [_masked_case(case, fields) for case in status.cases],
            "deliveries": [_masked_delivery(delivery, fields) for delivery in status.deliveries],
            "unmatched_refusals": [_masked_refusal(refused, fields) for refused in status.unmatched_refusals],
        }
    )


def purged(status: HandoffStatus) -> HandoffStatus:
    """The run's status as the ledger keeps it once purged (`activities.ledger.purge`): no payloads, no violation
    values, corrections and deliveries with their keys only. For the live view of a purged run Temporal still has."""
    return status.model_copy(
        update={
            "payload": {},
            "cases": [
                case.model_copy(
                    update={
                        "payload": {},
                        "violations": [v.model_copy(update={"value": None}) for v in case.violations],
                        "decision": case.decision.model_copy(update={"patch": emptied(case.decision.patch)})
                        if case.decision
                        else None,
                        "refused": [_refusal_with_patch(r, emptied(r.request.patch)) for r in case.refused],
                    }
                )
                for case in status.cases
            ],
            "deliveries": [d.model_copy(update={"fields": emptied(d.fields)}) for d in status.deliveries],
            "unmatched_refusals": [_refusal_with_patch(r, emptied(r.request.patch)) for r in status.unmatched_refusals],
        }
    )


# -- one part at a time -----------------------------------------------------------------------------------------------


def _masked(value: Any, path: str, fields: PersonalFields) -> Any:
    """The value at `path` ("" for the whole payload) with everything personal in it masked, keys kept."""
    if fields.is_personal(path) if path else fields.everything:
        return _hidden(value)
    if isinstance(value, Mapping):
        return {key: _masked(item, f"{path}.{key}" if path else str(key), fields) for key, item in value.items()}
    return value


def _hidden(value: Any) -> Any:
    if value is None:
        return None  # an absent value is no one's personal data, and often why the case was opened
    if isinstance(value, Mapping):
        return {key: _hidden(item) for key, item in value.items()}
    return MASK


def _by_path(values: Mapping[str, Any], fields: PersonalFields) -> dict[str, Any]:
    """A mapping keyed by payload paths (a patch, a comparison's two sides) with the personal ones masked."""
    return {path: _masked(value, path, fields) for path, value in values.items()}


def _masked_violation(violation: Violation, fields: PersonalFields) -> Violation:
    if violation.field and fields.is_personal(violation.field):
        value = _hidden(violation.value)
    elif isinstance(violation.value, Mapping):  # a Compare: both sides, by path
        value = _by_path(violation.value, fields)
    else:
        value = _hidden(violation.value) if fields.everything else violation.value
    return violation.model_copy(update={"value": value})


def _masked_decision(decision: DecisionRecord, fields: PersonalFields) -> DecisionRecord:
    return decision.model_copy(update={"patch": _by_path(decision.patch, fields)})


def _masked_refusal(refused: RefusedDecision, fields: PersonalFields) -> RefusedDecision:
    return _refusal_with_patch(refused, _by_path(refused.request.patch, fields))


def _refusal_with_patch(refused: RefusedDecision, patch: dict[str, Any]) -> RefusedDecision:
    return refused.model_copy(update={"request": refused.request.model_copy(update={"patch": patch})})


def _masked_case(case: ExceptionCase, fields: PersonalFields) -> ExceptionCase:
    return case.model_copy(
        update={
            "payload": _masked(case.payload, "", fields),
            "violations": [_masked_violation(violation, fields) for violation in case.violations],
            "decision": _masked_decision(case.decision, fields) if case.decision else None,
            "refused": [_masked_refusal(refused, fields) for refused in case.refused],
        }
    )


def _masked_delivery(delivery: Delivery, fields: PersonalFields) -> Delivery:
    personal = fields.delivered.get(delivery.system, frozenset())
    shown = {
        name: _hidden(value) if fields.everything or name in personal else value
        for name, value in delivery.fields.items()
    }
    return delivery.model_copy(update={"fields": shown})

"""The diagnosis, computed from the ledger: per handoff, "integrate" or "diagnose first", and the signs why.

The cases opened in a window are read in four queries (cases, their decisions, their violations, their
escalations), the same on SQLite and PostgreSQL; everything else is pure Python over those rows, so a test can feed
it rows of its own. How each sign is found:

- split decision (teams disagree): operator decisions grouped by the case's violations, each as (rule, field,
  similar value: text trimmed, spaces collapsed and case folded, 12.0 read as 12). A group is split when two of its
  cases were decided differently by two different operators. Cases are compared by all their violations, not one:
  a case rejected for an extra broken rule is no disagreement about the rule both cases share.
- foreign correction (no clear source of truth): the event is sent by the system that owns the entity of the
  trigger's dedupe key (the key is that system's id for the record: `reservation.id`, owned by `booking`). A
  correction whose patch rewrites a field of an entity another system owns fixes that system's record in passing:
  the sender carried a copy that disagreed with its owner, and the owner never hears of the fix (Handoff never
  writes to an owner). Without a dedupe key whose entity has an owner, the sender is unknown and the sign is not
  judged (a note says so). Drift between systems is not recorded in the ledger, so it is not judged either.
- overridden rule (informal knowledge): per rule, the operator-decided cases that broke it, and how many of them
  were approved as they were; a sign from `override_share` up.
- terse reasons (informal knowledge): operator decisions whose reason has fewer than `short_reason_words` words; a
  sign from `short_reason_share` of them up.
- nobody decides (automation before the rule): decided cases that ended by the contract's end-of-chain decision; a
  sign from `timeout_share` up.
- missed SLAs (governance): operator-decided cases that were escalated first, and each group that let an SLA pass;
  a sign from `escalation_share` up. Cases that ended by timeout are left to "nobody decides".

A share is judged only over `min_cases` cases or more; split decisions and foreign corrections are contradictions,
not tendencies, so one is enough.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from handoff.activities.ledger.reads import utc
from handoff.activities.ledger.tables import CaseRow, DecisionRow, EscalationRow, ViolationRow
from handoff.schemas.contract import DecisionKind, HandoffContract
from handoff.schemas.diagnosis import Diagnosis, DiagnosisReport, SignKind, Thresholds, Verdict, WarningSign
from handoff.schemas.drift import DRIFT_RULE_PREFIX

EXAMPLES = 5
"""Case ids kept per sign: enough to open and see it, few enough to read."""


@dataclass(frozen=True)
class ViolationFact:
    rule: str
    field: str
    value: Any


@dataclass
class CaseFacts:
    """What the diagnosis needs of one case: its violations, its decision (if any) and its escalations."""

    case_id: str
    handoff: str
    owner_group: str
    opened_at: datetime
    decision: str | None = None
    operator: str | None = None
    group: str | None = None
    reason: str = ""
    patch: dict[str, Any] = field(default_factory=dict)
    by_timeout: bool = False
    violations: list[ViolationFact] = field(default_factory=list)
    escalated_from: list[str] = field(default_factory=list)

    @property
    def decided_by_operator(self) -> bool:
        return self.decision is not None and not self.by_timeout

    @property
    def is_drift(self) -> bool:
        """A drift case (opened by a drift check, not by an event's data): evidence of its own kind."""
        return bool(self.violations) and all(v.rule.startswith(DRIFT_RULE_PREFIX) for v in self.violations)


def read_cases(ledger: Engine, *, handoffs: Sequence[str], since: datetime) -> list[CaseFacts]:
    """The cases of `handoffs` opened at or after `since`, oldest first, with what the diagnosis reads of them."""
    window = (col(CaseRow.handoff).in_(list(handoffs)), col(CaseRow.opened_at) >= since)
    cases: dict[str, CaseFacts] = {}
    with Session(ledger) as session:
        for case_id, handoff, owner, opened_at in session.exec(
            select(CaseRow.id, CaseRow.handoff, CaseRow.owner_group, CaseRow.opened_at)
            .where(*window)
            .order_by(col(CaseRow.opened_at), col(CaseRow.id))
        ).all():
            cases[case_id] = CaseFacts(case_id=case_id, handoff=handoff, owner_group=owner, opened_at=utc(opened_at))
        for decision in session.exec(
            select(DecisionRow).join(CaseRow, col(CaseRow.id) == col(DecisionRow.case_id)).where(*window)
        ).all():
            case = cases[decision.case_id]
            case.decision, case.operator, case.group = decision.decision, decision.operator, decision.group
            case.reason, case.patch, case.by_timeout = decision.reason, dict(decision.patch), decision.by_timeout
        for case_id, rule, field_path, value in session.exec(
            select(ViolationRow.case_id, ViolationRow.rule, ViolationRow.field, ViolationRow.value)
            .join(CaseRow, col(CaseRow.id) == col(ViolationRow.case_id))
            .where(*window)
            .order_by(col(ViolationRow.case_id), col(ViolationRow.position))
        ).all():
            cases[case_id].violations.append(ViolationFact(rule, field_path, value))
        for case_id, from_group in session.exec(
            select(EscalationRow.case_id, EscalationRow.from_group)
            .join(CaseRow, col(CaseRow.id) == col(EscalationRow.case_id))
            .where(*window)
            .order_by(col(EscalationRow.at))
        ).all():
            cases[case_id].escalated_from.append(from_group)
    return list(cases.values())


def diagnose_ledger(
    ledger: Engine,
    contracts: Sequence[HandoffContract],
    *,
    since: datetime,
    thresholds: Thresholds | None = None,
    now: datetime | None = None,
) -> DiagnosisReport:
    """The diagnosis of every handoff of `contracts` (one version each, in their order) over cases opened since
    `since`."""
    thresholds = thresholds or Thresholds()
    cases = read_cases(ledger, handoffs=[contract.name for contract in contracts], since=since)
    return DiagnosisReport(
        generated_at=now or datetime.now(UTC),
        since=since,
        thresholds=thresholds,
        handoffs=diagnose(contracts, cases, thresholds),
    )


def diagnose(
    contracts: Sequence[HandoffContract], cases: Iterable[CaseFacts], thresholds: Thresholds
) -> list[Diagnosis]:
    """One diagnosis per contract, from the cases given (those of other handoffs are ignored)."""
    by_handoff: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in cases:
        by_handoff[case.handoff].append(case)
    return [diagnose_handoff(contract, by_handoff[contract.name], thresholds) for contract in contracts]


def diagnose_handoff(contract: HandoffContract, cases: Sequence[CaseFacts], thresholds: Thresholds) -> Diagnosis:
    """The signs one handoff's cases show, and the verdict they lead to. Drift cases are their own sign: the
    others judge how people decide cases the event's data opened."""
    drifted = [case for case in cases if case.is_drift]
    cases = [case for case in cases if not case.is_drift]
    decided = [case for case in cases if case.decision is not None]
    by_operators = [case for case in decided if case.decided_by_operator]
    notes: list[str] = []
    if len(decided) < thresholds.min_cases:
        notes.append(
            f"only {len(decided)} decided case(s) in the window: shares are judged from {thresholds.min_cases} "
            "(HANDOFF_DIAGNOSE_MIN_CASES)"
        )
    sender = trigger_sender(contract)
    if sender is None and any(case.decision == DecisionKind.CORRECT for case in by_operators):
        notes.append(
            "corrections were not judged against the source of truth: the system that sends the event is unknown "
            "(the trigger's dedupe key names no entity that source_of_truth gives an owner)"
        )
    signs = [
        *split_decisions(by_operators),
        *foreign_corrections(by_operators, contract, sender),
        *overridden_rules(by_operators, thresholds),
        *terse_reasons(by_operators, thresholds),
        *nobody_decides(decided, thresholds),
        *missed_slas(by_operators, thresholds),
        *drifted_copies(drifted),
    ]
    return Diagnosis(
        handoff=contract.name,
        verdict=Verdict.DIAGNOSE_FIRST if signs else Verdict.INTEGRATE,
        cases=len(cases),
        decided=len(decided),
        signs=signs,
        notes=notes,
    )


def trigger_sender(contract: HandoffContract) -> str | None:
    """The system that sends the handoff's event: the owner of its dedupe key's entity; None when unknown."""
    if contract.trigger is None or contract.trigger.dedupe_key is None:
        return None
    return contract.source_of_truth.get(contract.trigger.dedupe_key.split(".", 1)[0])


def similar_value(value: Any) -> str:
    """A violation's value as it is compared: text trimmed, inner spaces collapsed and case folded; a whole float
    as the integer it is; anything else as canonical JSON."""
    if isinstance(value, str):
        value = " ".join(value.split()).casefold()
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True, default=str)


def split_decisions(by_operators: Sequence[CaseFacts]) -> list[WarningSign]:
    """One sign per set of violations that two operators decided in two different ways."""
    alike: dict[tuple[tuple[str, str, str], ...], list[CaseFacts]] = defaultdict(list)
    for case in by_operators:
        key = tuple(sorted({(v.rule, v.field, similar_value(v.value)) for v in case.violations}))
        if key:
            alike[key].append(case)
    signs = []
    for key, group in alike.items():
        # Two decisions that differ, by two operators, exist exactly when the group has two decisions and two
        # operators (one operator deciding both ways is a change of mind, not two teams): no pairwise scan needed.
        if len({case.decision for case in group}) < 2 or len({case.operator for case in group}) < 2:
            continue
        counts = Counter(f"{case.decision} by {case.group or case.operator}" for case in group)
        subject = "; ".join(f"{rule} (value {value})" for rule, _, value in key)
        ways = ", ".join(f"{label} ({count})" for label, count in sorted(counts.items()))
        signs.append(
            WarningSign(
                kind=SignKind.SPLIT_DECISION,
                theme=SignKind.SPLIT_DECISION.theme,
                subject=subject,
                summary=f"the same violation was decided {len({c.decision for c in group})} ways: {ways}",
                counts=dict(sorted(counts.items())),
                examples=_examples(group),
            )
        )
    return sorted(signs, key=lambda sign: sign.subject or "")


def foreign_corrections(
    by_operators: Sequence[CaseFacts], contract: HandoffContract, sender: str | None
) -> list[WarningSign]:
    """One sign per system whose entities' fields corrections rewrote, when that system is not the sender."""
    if sender is None:
        return []
    paths: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in by_operators:
        if case.decision != DecisionKind.CORRECT:
            continue
        owners = set()
        for path in case.patch:
            owner = contract.source_of_truth.get(path.split(".", 1)[0])
            if owner is not None and owner != sender:
                paths[owner][path] += 1
                owners.add(owner)
        for owner in owners:
            examples[owner].append(case)
    return [
        WarningSign(
            kind=SignKind.FOREIGN_CORRECTION,
            theme=SignKind.FOREIGN_CORRECTION.theme,
            subject=owner,
            summary=(
                f"{len(examples[owner])} correction(s) rewrote fields '{owner}' owns, in events '{sender}' sent: "
                + ", ".join(f"{path} ({count})" for path, count in sorted(counted.items()))
                + f"; which system's value is right, and is '{owner}' ever fixed?"
            ),
            counts=dict(sorted(counted.items())),
            examples=_examples(examples[owner]),
        )
        for owner, counted in sorted(paths.items())
    ]


def drifted_copies(drifted: Sequence[CaseFacts]) -> list[WarningSign]:
    """One sign per target system whose copies drift checks found changed: any drift counts, since a delivered copy
    that no longer matches its source means someone edits it there, or the source changes after the handoff."""
    fields: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in drifted:
        systems = set()
        for violation in case.violations:
            system = violation.rule.removeprefix(DRIFT_RULE_PREFIX)
            fields[system][violation.field] += 1
            systems.add(system)
        for system in systems:
            examples[system].append(case)
    return [
        WarningSign(
            kind=SignKind.DRIFTED_COPIES,
            theme=SignKind.DRIFTED_COPIES.theme,
            subject=system,
            summary=(
                f"{len(examples[system])} delivered record(s) drifted from their source in '{system}': "
                + ", ".join(f"{path} ({count})" for path, count in sorted(counted.items()))
                + f"; who changes '{system}' after the handoff, and which value is right?"
            ),
            counts=dict(sorted(counted.items())),
            examples=_examples(examples[system]),
        )
        for system, counted in sorted(fields.items())
    ]


def overridden_rules(by_operators: Sequence[CaseFacts], thresholds: Thresholds) -> list[WarningSign]:
    """One sign per rule approved as is in at least `override_share` of the operator-decided cases that broke it."""
    broke: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in by_operators:
        for rule in dict.fromkeys(violation.rule for violation in case.violations):
            broke[rule].append(case)
    signs = []
    for rule, cases in broke.items():
        approved = [case for case in cases if case.decision == DecisionKind.APPROVE]
        if len(cases) < thresholds.min_cases or len(approved) < thresholds.override_share * len(cases):
            continue
        signs.append(
            WarningSign(
                kind=SignKind.OVERRIDDEN_RULE,
                theme=SignKind.OVERRIDDEN_RULE.theme,
                subject=rule,
                summary=(
                    f"approved as is in {len(approved)} of {len(cases)} decided case(s) ({_pct(len(approved), len(cases))}): "
                    "the rule is not the one people apply"
                ),
                counts={"approved": len(approved), "decided": len(cases)},
                examples=_examples(approved),
            )
        )
    return sorted(signs, key=lambda sign: sign.subject or "")


def terse_reasons(by_operators: Sequence[CaseFacts], thresholds: Thresholds) -> list[WarningSign]:
    """A sign when at least `short_reason_share` of operator decisions give fewer than `short_reason_words` words."""
    short = [case for case in by_operators if len(case.reason.split()) < thresholds.short_reason_words]
    total = len(by_operators)
    if total < thresholds.min_cases or len(short) < thresholds.short_reason_share * total:
        return []
    return [
        WarningSign(
            kind=SignKind.TERSE_REASONS,
            theme=SignKind.TERSE_REASONS.theme,
            summary=(
                f"{len(short)} of {total} decision(s) ({_pct(len(short), total)}) give a reason of fewer than "
                f"{thresholds.short_reason_words} words: why they were decided so is not written down"
            ),
            counts={"short": len(short), "decisions": total},
            examples=_examples(short),
        )
    ]


def nobody_decides(decided: Sequence[CaseFacts], thresholds: Thresholds) -> list[WarningSign]:
    """A sign when at least `timeout_share` of decided cases ended by the contract's end-of-chain decision."""
    timed_out = [case for case in decided if case.by_timeout]
    if len(decided) < thresholds.min_cases or not timed_out or len(timed_out) < thresholds.timeout_share * len(decided):
        return []
    last_owners = Counter(case.owner_group for case in timed_out)
    return [
        WarningSign(
            kind=SignKind.NOBODY_DECIDES,
            theme=SignKind.NOBODY_DECIDES.theme,
            summary=(
                f"{len(timed_out)} of {len(decided)} decided case(s) ({_pct(len(timed_out), len(decided))}) ended by "
                "timeout, with "
                + ", ".join(f"{group} ({count})" for group, count in sorted(last_owners.items()))
                + ": nobody decides them; agree on the rule, and who applies it, before automating it"
            ),
            counts={"by_timeout": len(timed_out), "decided": len(decided)},
            examples=_examples(timed_out),
        )
    ]


def missed_slas(by_operators: Sequence[CaseFacts], thresholds: Thresholds) -> list[WarningSign]:
    """A sign when at least `escalation_share` of operator-decided cases were escalated before someone decided."""
    escalated = [case for case in by_operators if case.escalated_from]
    total = len(by_operators)
    if total < thresholds.min_cases or not escalated or len(escalated) < thresholds.escalation_share * total:
        return []
    missed = Counter(group for case in escalated for group in case.escalated_from)
    return [
        WarningSign(
            kind=SignKind.MISSED_SLAS,
            theme=SignKind.MISSED_SLAS.theme,
            summary=(
                f"{len(escalated)} of {total} decided case(s) ({_pct(len(escalated), total)}) were escalated first; "
                "SLAs missed by "
                + ", ".join(f"{group} ({count})" for group, count in sorted(missed.items()))
                + ": the owner does not answer in time"
            ),
            counts={"escalated": len(escalated), "decided": total}
            | {f"missed by {group}": count for group, count in sorted(missed.items())},
            examples=_examples(escalated),
        )
    ]


def _examples(cases: Iterable[CaseFacts]) -> list[str]:
    return sorted(case.case_id for case in cases)[:EXAMPLES]


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%"

"""The diagnosis from ledger rows with known patterns, on SQLite and PostgreSQL: exactly the signs planted, with
their counts; a clean handoff says "integrate"; thresholds and the window are honoured."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session

from handoff.activities.ledger.diagnosis import CaseFacts, ViolationFact, diagnose, diagnose_ledger
from handoff.activities.ledger.tables import CaseRow, DecisionRow, EscalationRow, RunRow, ViolationRow
from handoff.schemas.contract import HandoffContract, Trigger
from handoff.schemas.diagnosis import Diagnosis, SignKind, Thresholds, Verdict
from handoff.workers.app import Handoffs

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
LONG = "the customer confirmed it by phone"
"""A reason long enough to say why."""


class Entity(BaseModel):
    id: str = "x"


class Payload(BaseModel):
    order: Entity = Entity()
    customer: Entity = Entity()


def contract(
    name: str, *, dedupe_key: str | None = "order.id", owners: dict[str, str] | None = None
) -> HandoffContract:
    """A contract whose event carries an order (owned by `shop`, which sends it) and a customer (owned by `crm`)."""
    return HandoffContract(
        name=name,
        trigger=Trigger(event=f"{name}.happened", payload=Payload, dedupe_key=dedupe_key),
        source_of_truth=owners or {"order": "shop", "customer": "crm"},
    )


OVERRIDDEN, TIMING_OUT, CLEAN, CORRECTED = (
    contract("order-intake"),
    contract("ticket-sync"),
    contract("invoice-run"),
    contract("lead-handover"),
)
APP = Handoffs(contracts=[OVERRIDDEN, TIMING_OUT, CLEAN, CORRECTED])
"""The app `handoff diagnose --app tests.activities.test_diagnosis:APP` reads these contracts from."""


class Ledger:
    """Writes cases as the workflow would leave them: a run, the case, its violations, escalations and decision."""

    def __init__(self, session: Session, start: datetime) -> None:
        self.session, self.start = session, start
        self.count = 0

    def case(
        self,
        handoff: str,
        violations: list[tuple[str, str, Any]],
        *,
        decision: str | None = None,
        operator: str = "ada",
        group: str | None = "desk",
        reason: str = LONG,
        patch: dict[str, Any] | None = None,
        escalated: tuple[str, ...] = (),
        by_timeout: bool = False,
    ) -> str:
        self.count += 1
        case_id, workflow_id = f"{handoff}-C{self.count:02d}", f"{handoff}/{self.count}"
        opened_at = self.start + timedelta(minutes=self.count)
        self.session.add(
            RunRow(
                workflow_id=workflow_id,
                handoff=handoff,
                event=f"{handoff}.happened",
                dedupe_key=str(self.count),
                contract_version=1,
                contract_hash="hash",
                stage="awaiting-decision" if decision is None else "delivered",
                payload={},
                received_at=opened_at,
                updated_at=opened_at,
            )
        )
        self.session.add(
            CaseRow(
                id=case_id,
                workflow_id=workflow_id,
                handoff=handoff,
                owner_group=escalated[-1] if escalated else "desk",
                status="open" if decision is None else "decided",
                opened_at=opened_at,
                sla_deadline=opened_at + timedelta(hours=1),
                decision=decision,
                decided_at=None if decision is None else opened_at + timedelta(minutes=5),
                allowed=["approve", "reject", "correct", "retry"],
            )
        )
        self.session.flush()
        for position, (rule, field, value) in enumerate(violations):
            self.session.add(
                ViolationRow(
                    case_id=case_id, position=position, rule=rule, kind="rule", field=field, value=value, reason="why"
                )
            )
        chain = ("desk", *escalated)
        for from_group, to_group in itertools.pairwise(chain):
            self.session.add(
                EscalationRow(
                    case_id=case_id, workflow_id=workflow_id, from_group=from_group, to_group=to_group, at=opened_at
                )
            )
        if decision is not None:
            self.session.add(
                DecisionRow(
                    case_id=case_id,
                    workflow_id=workflow_id,
                    handoff=handoff,
                    decision=decision,
                    operator="contract" if by_timeout else operator,
                    group=None if by_timeout else group,
                    reason="the SLA passed" if by_timeout else reason,
                    patch=patch or {},
                    decided_at=opened_at + timedelta(minutes=5),
                    by_timeout=by_timeout,
                )
            )
        return case_id


TOTAL = ("order.total <= 500", "order.total")
EMAIL = ("customer.email is required", "customer.email")


def write_patterns(ledger: Engine, start: datetime = T0) -> dict[str, list[str]]:
    """The planted patterns (cases opened from `start` on), and the ids of the cases that show each:

    - order-intake: `order.total <= 500` broken in 10 decided cases (each another total), approved in 9; one missing
      e-mail approved by `desk`, the same missing e-mail (escalated once) rejected by `managers`;
    - ticket-sync: 4 of 6 decided cases end by timeout (after escalating to `managers`), one case still open;
    - invoice-run: nothing wrong: each decision on its own violation, with a reason, corrections of the sender's own
      entity;
    - lead-handover: corrections of the customer (owned by `crm`, not `shop`, which sends the event), reasons of a
      word or two, 2 of 7 decided cases escalated before `managers` decided them.
    """
    with Session(ledger) as session:
        write = Ledger(session, start)
        approved = [
            write.case("order-intake", [(*TOTAL, 510 + n)], decision="approve", operator=("ada", "bob")[n % 2])
            for n in range(9)
        ]
        write.case("order-intake", [(*TOTAL, 900)], decision="reject")
        split = [
            write.case("order-intake", [(*EMAIL, None)], decision="approve"),
            write.case(
                "order-intake",
                [(*EMAIL, None)],
                decision="reject",
                operator="max",
                group="managers",
                escalated=("managers",),
            ),
        ]
        timed_out = [
            write.case("ticket-sync", [(*TOTAL, 600 + n)], decision="reject", escalated=("managers",), by_timeout=True)
            for n in range(4)
        ]
        write.case("ticket-sync", [(*TOTAL, 700)], decision="approve")
        write.case("ticket-sync", [(*TOTAL, 701)], decision="reject", operator="bob")
        write.case("ticket-sync", [(*TOTAL, 702)])
        write.case("invoice-run", [(*TOTAL, 800)], decision="approve")
        write.case("invoice-run", [(*TOTAL, 801)], decision="reject", operator="bob")
        write.case("invoice-run", [(*TOTAL, 802)], decision="reject")
        write.case("invoice-run", [(*EMAIL, "")], decision="retry", operator="bob")
        for n in range(2):
            write.case("invoice-run", [(*TOTAL, 810 + n)], decision="correct", patch={"order.total": 400})
        foreign = [
            write.case(
                "lead-handover",
                [(*EMAIL, f"x{n}@")],
                decision="correct",
                patch={"customer.email": f"x{n}@shop.test"},
                reason="typo" if n else LONG,
            )
            for n in range(3)
        ]
        terse_escalated = [
            write.case(
                "lead-handover",
                [(*TOTAL, 900 + n)],
                decision="reject",
                operator="max",
                group="managers",
                reason="dup",
                escalated=("managers",),
            )
            for n in range(2)
        ]
        write.case("lead-handover", [(*TOTAL, 950)], decision="correct", patch={"order.total": 10}, reason="fixed it")
        write.case("lead-handover", [(*TOTAL, 951)], decision="reject", operator="bob")
        session.commit()
    return {
        "approved": approved,
        "split": split,
        "timed_out": timed_out,
        "foreign": foreign,
        "terse": [*foreign[1:], *terse_escalated, f"lead-handover-C{write.count - 1:02d}"],
        "escalated": terse_escalated,
    }


def signs_of(diagnosis: Diagnosis) -> list[tuple[SignKind, str | None, dict[str, int]]]:
    return [(sign.kind, sign.subject, sign.counts) for sign in diagnosis.signs]


@pytest.fixture
def planted(ledger: Engine) -> tuple[dict[str, Diagnosis], dict[str, list[str]]]:
    """The diagnosis of the ledger with the planted patterns, by handoff, and the cases of each pattern."""
    cases = write_patterns(ledger)
    report = diagnose_ledger(ledger, [OVERRIDDEN, TIMING_OUT, CLEAN, CORRECTED], since=T0, now=T0 + timedelta(days=1))
    return {diagnosis.handoff: diagnosis for diagnosis in report.handoffs}, cases


def test_diagnosis_names_exactly_the_overridden_rule_the_split_violation_and_the_timeouts(
    planted: tuple[dict[str, Diagnosis], dict[str, list[str]]],
) -> None:
    """A rule approved 9 times in 10, one violation decided both ways by two groups, and 4 of 6 cases ending by
    timeout: those three signs, with their counts, and nothing else."""
    diagnoses, cases = planted
    intake, tickets = diagnoses["order-intake"], diagnoses["ticket-sync"]

    assert [
        (
            SignKind.SPLIT_DECISION,
            "customer.email is required (value null)",
            {"approve by desk": 1, "reject by managers": 1},
        ),
        (SignKind.OVERRIDDEN_RULE, "order.total <= 500", {"approved": 9, "decided": 10}),
    ] == signs_of(intake)
    assert [(SignKind.NOBODY_DECIDES, None, {"by_timeout": 4, "decided": 6})] == signs_of(tickets)
    assert (Verdict.DIAGNOSE_FIRST, 12, 12) == (intake.verdict, intake.cases, intake.decided)
    assert (Verdict.DIAGNOSE_FIRST, 7, 6) == (tickets.verdict, tickets.cases, tickets.decided)
    assert sorted(cases["split"]) == intake.signs[0].examples
    assert sorted(cases["approved"])[:5] == intake.signs[1].examples
    assert sorted(cases["timed_out"]) == tickets.signs[0].examples
    assert "9 of 10" in intake.signs[1].summary and "managers (4)" in tickets.signs[0].summary


def test_a_clean_handoff_says_integrate(planted: tuple[dict[str, Diagnosis], dict[str, list[str]]]) -> None:
    """Different decisions on different values, with reasons, and corrections of the sender's own record: no sign."""
    clean = planted[0]["invoice-run"]

    assert (Verdict.INTEGRATE, [], [], 6) == (clean.verdict, clean.signs, clean.notes, clean.decided)


def test_diagnosis_names_foreign_corrections_terse_reasons_and_missed_slas(
    planted: tuple[dict[str, Diagnosis], dict[str, list[str]]],
) -> None:
    """Corrections of the customer `crm` owns in events `shop` sends, 5 reasons of 7 under three words, 2 of 7
    cases escalated before a decision: each named, with its counts and cases."""
    diagnoses, cases = planted
    leads = diagnoses["lead-handover"]

    assert [
        (SignKind.FOREIGN_CORRECTION, "crm", {"customer.email": 3}),
        (SignKind.TERSE_REASONS, None, {"short": 5, "decisions": 7}),
        (SignKind.MISSED_SLAS, None, {"escalated": 2, "decided": 7, "missed by desk": 2}),
    ] == signs_of(leads)
    assert [sorted(cases["foreign"]), sorted(cases["terse"]), sorted(cases["escalated"])] == [
        sign.examples for sign in leads.signs
    ]


def test_cases_opened_before_the_window_are_not_read(ledger: Engine) -> None:
    """A window that starts after every case finds none: integrate, with a note that nothing could be judged."""
    write_patterns(ledger)

    report = diagnose_ledger(ledger, [OVERRIDDEN], since=T0 + timedelta(days=1))

    [intake] = report.handoffs
    assert (Verdict.INTEGRATE, 0, []) == (intake.verdict, intake.cases, intake.signs)
    assert [
        "only 0 decided case(s) in the window: shares are judged from 5 (HANDOFF_DIAGNOSE_MIN_CASES)"
    ] == intake.notes


def facts(n: int, **decided: Any) -> list[CaseFacts]:
    """`n` decided cases of order-intake, each breaking `order.total <= 500` with its own total."""
    return [
        CaseFacts(
            case_id=f"C{index}",
            handoff="order-intake",
            owner_group="desk",
            opened_at=T0,
            violations=[ViolationFact(*TOTAL, 600 + index)],
            **({"decision": "approve", "operator": "ada", "group": "desk", "reason": LONG} | decided),
        )
        for index in range(n)
    ]


def test_thresholds_decide_when_a_share_is_a_sign() -> None:
    """6 approvals of 6: overridden at the default share, not when 5 cases are not enough or the share is above 1."""
    cases = facts(6)

    default = diagnose([OVERRIDDEN], cases, Thresholds())[0]
    too_few = diagnose([OVERRIDDEN], cases, Thresholds(min_cases=7))[0]
    words = diagnose([OVERRIDDEN], cases, Thresholds(short_reason_words=7))[0]

    assert [SignKind.OVERRIDDEN_RULE] == [sign.kind for sign in default.signs]
    assert ([], Verdict.INTEGRATE) == (too_few.signs, too_few.verdict)
    assert [SignKind.OVERRIDDEN_RULE, SignKind.TERSE_REASONS] == [sign.kind for sign in words.signs]


def test_similar_values_decided_both_ways_split_and_one_operator_changing_mind_does_not() -> None:
    """' Main St ' and 'main st' are one violation decided both ways by two operators; the same operator deciding
    two ways is not two teams disagreeing."""

    def case(case_id: str, value: Any, decision: str, operator: str) -> CaseFacts:
        return CaseFacts(
            case_id=case_id,
            handoff="order-intake",
            owner_group="desk",
            opened_at=T0,
            decision=decision,
            operator=operator,
            group="desk",
            reason=LONG,
            violations=[ViolationFact("street known", "order.street", value)],
        )

    split = diagnose(
        [OVERRIDDEN], [case("A", " Main  St ", "approve", "ada"), case("B", "main st", "reject", "bob")], Thresholds()
    )[0]
    one_mind = diagnose(
        [OVERRIDDEN], [case("A", 12.0, "approve", "ada"), case("B", 12, "reject", "ada")], Thresholds()
    )[0]

    assert [
        (SignKind.SPLIT_DECISION, 'street known (value "main st")', {"approve by desk": 1, "reject by desk": 1})
    ] == (signs_of(split))
    assert [] == one_mind.signs


def test_corrections_are_not_judged_when_the_sender_is_unknown() -> None:
    """Without a dedupe key the sending system is unknown: no foreign-correction sign, and a note that says why."""
    no_key = contract("order-intake", dedupe_key=None)
    cases = facts(1, decision="correct", patch={"customer.id": "c2"})

    [diagnosis] = diagnose([no_key], cases, Thresholds())

    assert [] == diagnosis.signs
    assert any("sends the event is unknown" in note for note in diagnosis.notes)


def test_drift_cases_are_a_sign_of_their_own_and_no_evidence_for_the_others() -> None:
    """Two drift cases in pos (one field twice) name the system and its fields; approved as is, they are not counted
    as a rule overridden, nor as decisions at all."""

    def drift(case_id: str, *fields: str) -> CaseFacts:
        return CaseFacts(
            case_id=case_id,
            handoff="order-intake",
            owner_group="desk",
            opened_at=T0,
            violations=[ViolationFact("drift: pos", path, "changed") for path in fields],
            decision="approve",
            operator="ada",
            group="desk",
            reason="ok",
        )

    cases = [*facts(2), drift("D1", "order.total", "order.note"), drift("D2", "order.total")]

    diagnosis = diagnose([OVERRIDDEN], cases, Thresholds(min_cases=2))[0]

    assert [(SignKind.DRIFTED_COPIES, "pos", {"order.note": 1, "order.total": 2})] == [
        (kind, subject, counts) for kind, subject, counts in signs_of(diagnosis) if kind is SignKind.DRIFTED_COPIES
    ]
    overridden = next(sign for sign in diagnosis.signs if sign.kind is SignKind.OVERRIDDEN_RULE)
    assert ["C0", "C1"] == overridden.examples
    assert (2, 2) == (diagnosis.cases, diagnosis.decided)  # the drift cases are not among the cases judged

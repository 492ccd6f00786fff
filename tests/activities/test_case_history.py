"""Claiming, releasing, reassigning and commenting on cases, and a case's history, on real ledgers (SQLite and
PostgreSQL): each rule refuses with its kind and words, repeats change nothing, a decided or escalated case holds
nobody, and of operators racing for one case exactly one wins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from handoff.activities.ledger import case_history as case_history_module
from handoff.activities.ledger.case_history import (
    BulkDecisionProblem,
    CaseActionRefused,
    case_claim,
    case_history,
    check_claim_for_decision,
    claim_case,
    comment_on_case,
    plan_decisions,
    reassign_case,
    release_case,
)
from handoff.activities.ledger.operators import add_operator, operator_named
from handoff.activities.ledger.reads import case_detail, open_cases
from handoff.activities.ledger.tables import CaseEventRow, OperatorRow
from handoff.activities.ledger.writes import record_escalation, record_refusal, record_stage_change
from handoff.schemas.activities import EscalationRecord, RefusalRecord, RunStamp, StageChange
from handoff.schemas.api import BulkDecisionBody
from handoff.schemas.case_history import CaseActionRefusalKind, CaseClaim
from handoff.schemas.cases import (
    CaseStatus,
    DecisionRecord,
    DecisionRequest,
    Escalation,
    ExceptionCase,
    RefusalKind,
    RefusedDecision,
    Violation,
)
from handoff.schemas.contract import DecisionKind
from handoff.schemas.operators import Operator, Role
from handoff.schemas.runs import Stage

T = TypeVar("T")

T0 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
FRONT, MANAGERS, KITCHEN = "front-of-house", "restaurant-managers", "kitchen-leads"
GROUPS = (FRONT, MANAGERS, KITCHEN)
CASE = "C-000000000001"
RACERS = [f"host{n}" for n in range(8)]
INVALID = ("   ", "x" * 2001, "a\x00b", "a\ud800b")
"""Blank, too long, a NUL, a lone surrogate: no comment."""


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def open_a_case(ledger: Engine, case_id: str = CASE, handoff: str = "reservation-to-pos") -> str:
    """A run waiting on one case owned by front-of-house, written as the workflow writes it; its workflow id."""
    workflow_id = f"{handoff}/{case_id}"
    stamp = RunStamp(
        handoff=handoff,
        event="reservation.confirmed",
        dedupe_key=case_id,
        contract_version=1,
        contract_hash="c0ffee",
        payload={"reservation": {"party_size": 14}},
        received_at=T0,
    )
    record_stage_change(ledger, StageChange(workflow_id=workflow_id, step=1, stage=Stage.VALIDATING, at=T0, run=stamp))
    record_stage_change(
        ledger,
        StageChange(
            workflow_id=workflow_id, step=2, stage=Stage.AWAITING_DECISION, at=T0, case=exception(case_id, handoff)
        ),
    )
    return workflow_id


def exception(case_id: str = CASE, handoff: str = "reservation-to-pos") -> ExceptionCase:
    return ExceptionCase(
        id=case_id,
        handoff=handoff,
        workflow_id=f"{handoff}/{case_id}",
        violations=[Violation(rule="party <= 12", kind="max", field="reservation.party_size", value=14, reason="big")],
        payload={"reservation": {"party_size": 14}},
        owner_group=FRONT,
        opened_at=T0,
        sla_deadline=at(30),
        allowed=[DecisionKind.APPROVE, DecisionKind.REJECT],
    )


def decide_in_ledger(ledger: Engine, operator: str = "hana", minutes: int = 20) -> None:
    """The case decided, as the workflow records it."""
    record = DecisionRecord(
        case_id=CASE,
        decision=DecisionKind.REJECT,
        operator=operator,
        group=FRONT,
        reason="no table that big",
        decided_at=at(minutes),
    )
    decided = exception().model_copy(update={"status": CaseStatus.DECIDED, "decision": record})
    record_stage_change(
        ledger,
        StageChange(
            workflow_id=f"reservation-to-pos/{CASE}",
            step=3,
            stage=Stage.REJECTED,
            at=at(minutes),
            case=decided,
            decision=record,
        ),
    )


def escalate_in_ledger(ledger: Engine, minutes: int = 30) -> None:
    """The SLA passed: the case goes to the restaurant managers, as the workflow records it."""
    record_escalation(
        ledger,
        EscalationRecord(
            workflow_id=f"reservation-to-pos/{CASE}",
            case_id=CASE,
            escalation=Escalation(from_group=FRONT, to_group=MANAGERS, at=at(minutes)),
            sla_deadline=at(minutes + 30),
        ),
    )


@pytest.fixture
def people(ledger: Engine) -> dict[str, Operator]:
    """Two hosts (front-of-house), a manager, a chef, a viewer and an administrator, as the ledger has them."""
    everyone = {
        "hana": (Role.OPERATOR, [FRONT]),
        "hugo": (Role.OPERATOR, [FRONT]),
        "max": (Role.OPERATOR, [MANAGERS]),
        "chef": (Role.OPERATOR, [KITCHEN]),
        "vera": (Role.VIEWER, []),
        "ada": (Role.ADMINISTRATOR, []),
    }
    for name, (role, groups) in everyone.items():
        add_operator(ledger, name, groups, declared_groups=GROUPS, role=role)
    return {name: operator_named(ledger, name) for name in everyone}


def refusal(action: Callable[[], object]) -> tuple[str, str]:
    """The kind and words of the refusal `action` must raise."""
    with pytest.raises(CaseActionRefused) as refused:
        action()
    return refused.value.kind.value, refused.value.message


def acts(ledger: Engine) -> list[tuple[str, str, str | None, str | None]]:
    """The case's rows in case_events: kind, operator, to_operator, text."""
    with Session(ledger) as session:
        rows = session.exec(select(CaseEventRow).order_by(CaseEventRow.id)).all()  # type: ignore[arg-type]
    return [(row.kind, row.operator, row.to_operator, row.text) for row in rows]


def test_a_claim_shows_who_holds_the_case_and_a_repeat_changes_nothing(
    ledger: Engine, people: dict[str, Operator]
) -> None:
    """hana claims: the case, the open-case list and the detail show her; claiming again answers changed=False and
    adds no row."""
    open_a_case(ledger)

    first = claim_case(ledger, CASE, people["hana"], at=at(1))
    again = claim_case(ledger, CASE, people["hana"], at=at(2))

    assert ("hana", at(1), True) == (first.claimed_by, first.claimed_at, first.changed)
    assert ("hana", at(1), False) == (again.claimed_by, again.claimed_at, again.changed)
    listed = open_cases(ledger, now=at(3))[0]
    detail = case_detail(ledger, CASE, now=at(3))
    assert detail is not None
    assert [("hana", at(1))] * 3 == [
        (listed.claimed_by, listed.claimed_at),
        (detail.claimed_by, detail.claimed_at),
        (case_claim(ledger, CASE).claimed_by, case_claim(ledger, CASE).claimed_at),
    ]
    assert [("claimed", "hana", None, None)] == acts(ledger)


def test_a_held_case_is_refused_to_others_naming_the_holder(ledger: Engine, people: dict[str, Operator]) -> None:
    """hugo may neither claim nor release nor hand on hana's case; each refusal names her, and nothing changes."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))

    refusals = [
        refusal(lambda: claim_case(ledger, CASE, people["hugo"], at=at(2))),
        refusal(lambda: release_case(ledger, CASE, people["hugo"], at=at(2))),
        refusal(lambda: reassign_case(ledger, CASE, people["hugo"], "hugo", at=at(2))),
    ]

    assert ["held-by-another"] * 3 == [kind for kind, _ in refusals]
    assert all("held by hana since 2026-12-04 18:01:00 UTC" in words for _, words in refusals)
    assert "only hana may release it or hand it on" in refusals[0][1]
    assert ("hana", [("claimed", "hana", None, None)]) == (case_claim(ledger, CASE).claimed_by, acts(ledger))


def test_only_an_operator_of_the_owner_group_acts_on_a_case(ledger: Engine, people: dict[str, Operator]) -> None:
    """A chef (another group), a viewer, an administrator, someone the ledger does not know, and an unknown case are
    refused, each with its kind."""
    open_a_case(ledger)
    stranger = Operator(name="mallory", groups=(FRONT,), created_at=T0)

    found = {
        "chef": refusal(lambda: claim_case(ledger, CASE, people["chef"], at=at(1))),
        "chef comments": refusal(lambda: comment_on_case(ledger, CASE, people["chef"], "yum", at=at(1))),
        "vera": refusal(lambda: claim_case(ledger, CASE, people["vera"], at=at(1))),
        "ada": refusal(lambda: comment_on_case(ledger, CASE, people["ada"], "hi", at=at(1))),
        "mallory": refusal(lambda: claim_case(ledger, CASE, stranger, at=at(1))),
        "unknown": refusal(lambda: claim_case(ledger, "C-nope", people["hana"], at=at(1))),
        "history": refusal(lambda: case_history(ledger, "C-nope")),
        "claim": refusal(lambda: case_claim(ledger, "C-nope")),
    }

    assert {
        "chef": "not-owner",
        "chef comments": "not-owner",
        "vera": "not-an-operator",
        "ada": "not-an-operator",
        "mallory": "not-an-operator",
        "unknown": "unknown-case",
        "history": "unknown-case",
        "claim": "unknown-case",
    } == {who: kind for who, (kind, _) in found.items()}
    assert (
        "Operator 'chef' (kitchen-leads) may not claim case C-000000000001: it is owned by 'front-of-house' now"
        in found["chef"][1]
    )
    assert "Only an operator may claim a case; 'vera' is a viewer." == found["vera"][1]
    assert "'mallory' is not in the ledger" in found["mallory"][1]
    assert "No case 'C-nope' in the ledger." == found["unknown"][1]
    assert [] == acts(ledger)


def test_the_holder_releases_and_a_repeat_changes_nothing(ledger: Engine, people: dict[str, Operator]) -> None:
    """hana releases her case; then nobody holds it, hugo may claim it, and releasing a free case is a no-op."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))

    released = release_case(ledger, CASE, people["hana"], at=at(2))
    again = release_case(ledger, CASE, people["hana"], at=at(3))
    taken = claim_case(ledger, CASE, people["hugo"], at=at(4))

    assert [(None, None, True), (None, None, False), ("hugo", at(4), True)] == [
        (c.claimed_by, c.claimed_at, c.changed) for c in (released, again, taken)
    ]
    assert [("claimed", "hana", None, None), ("released", "hana", None, None), ("claimed", "hugo", None, None)] == acts(
        ledger
    )


def test_the_holder_hands_the_case_on_and_anyone_assigns_a_free_one(
    ledger: Engine, people: dict[str, Operator]
) -> None:
    """hana hands her case to hugo, who then holds it (and she may no longer hand it on); to its holder is a no-op;
    a free case may be assigned by any operator of the group, and assigning it to oneself is a claim."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))

    handed = reassign_case(ledger, CASE, people["hana"], "hugo", at=at(2))
    no_longer_hers = refusal(lambda: reassign_case(ledger, CASE, people["hana"], "hana", at=at(3)))
    to_holder = reassign_case(ledger, CASE, people["hugo"], "hugo", at=at(3))
    release_case(ledger, CASE, people["hugo"], at=at(4))
    assigned = reassign_case(ledger, CASE, people["hugo"], "hana", at=at(5))
    release_case(ledger, CASE, people["hana"], at=at(6))
    to_self = reassign_case(ledger, CASE, people["hugo"], "hugo", at=at(7))

    assert [("hugo", True), ("hugo", False), ("hana", True), ("hugo", True)] == [
        (c.claimed_by, c.changed) for c in (handed, to_holder, assigned, to_self)
    ]
    assert "held-by-another" == no_longer_hers[0]
    assert [
        ("claimed", "hana", None, None),
        ("reassigned", "hana", "hugo", None),
        ("released", "hugo", None, None),
        ("reassigned", "hugo", "hana", None),
        ("released", "hana", None, None),
        ("claimed", "hugo", None, None),
    ] == acts(ledger)


def test_a_case_is_handed_only_to_an_operator_of_its_group(ledger: Engine, people: dict[str, Operator]) -> None:
    """To a chef (another group), a viewer, or a name nobody has: refused as bad-assignee, saying why."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))

    to_chef = refusal(lambda: reassign_case(ledger, CASE, people["hana"], "chef", at=at(2)))
    to_viewer = refusal(lambda: reassign_case(ledger, CASE, people["hana"], "vera", at=at(2)))
    to_nobody = refusal(lambda: reassign_case(ledger, CASE, people["hana"], "nobody", at=at(2)))

    assert ["bad-assignee"] * 3 == [to_chef[0], to_viewer[0], to_nobody[0]]
    assert "chef (kitchen-leads) is not in 'front-of-house', which owns the case now" in to_chef[1]
    assert "vera is a viewer, and only operators hold cases" in to_viewer[1]
    assert "there is no operator named 'nobody' (operators: chef, hana, hugo, max)" in to_nobody[1]
    assert "hana" == case_claim(ledger, CASE).claimed_by


def test_comments_are_kept_trimmed_and_bad_ones_refused(ledger: Engine, people: dict[str, Operator]) -> None:
    """Anyone of the group comments (held or not, each call one line); blank, too long, NUL or a lone surrogate is
    refused as invalid-comment, and nothing is kept."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))

    note = comment_on_case(ledger, CASE, people["hugo"], "  guest called: 13 people now \n", at=at(2))
    comment_on_case(ledger, CASE, people["hugo"], "  guest called: 13 people now \n", at=at(3))
    bad = [refusal(partial(comment_on_case, ledger, CASE, people["hana"], text, at=at(4))) for text in INVALID]

    assert ("commented", "hugo", "guest called: 13 people now") == (note.kind.value, note.operator, note.text)
    assert ["invalid-comment"] * 4 == [kind for kind, _ in bad]
    assert "at least 1 character" in bad[0][1] and "at most 2000 characters" in bad[1][1]
    assert "the text holds a NUL character" in bad[2][1] and "unicode string" in bad[3][1]
    assert [("commented", "hugo", None, "guest called: 13 people now")] * 2 == acts(ledger)[1:]
    longest = comment_on_case(ledger, CASE, people["hugo"], "é" * 2000, at=at(5))  # characters, not bytes
    assert 2000 == len(longest.text or "")


def test_a_decided_case_holds_nobody_says_who_decided_and_still_takes_comments(
    ledger: Engine, people: dict[str, Operator]
) -> None:
    """hana held the case when she decided it: reads show nobody holding it, and who decided; claim, release and
    reassign are refused naming the decision; a comment is still kept."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))
    decide_in_ledger(ledger, operator="hana", minutes=20)

    refused = [
        refusal(lambda: claim_case(ledger, CASE, people["hugo"], at=at(21))),
        refusal(lambda: release_case(ledger, CASE, people["hana"], at=at(21))),
        refusal(lambda: reassign_case(ledger, CASE, people["hana"], "hugo", at=at(21))),
    ]
    comment_on_case(ledger, CASE, people["hugo"], "guest booked the private room instead", at=at(22))

    claim = case_claim(ledger, CASE)
    detail = case_detail(ledger, CASE, now=at(23))
    assert detail is not None
    assert (None, "hana", None) == (claim.claimed_by, claim.decided_by, detail.claimed_by)
    assert ["already-decided"] * 3 == [kind for kind, _ in refused]
    assert "is decided (reject by hana at 2026-12-04 18:20:00 UTC): a decided case holds nobody" in refused[0][1]
    assert ("commented", "guest booked the private room instead") == (
        detail.history[-1].kind.value,
        detail.history[-1].text,
    )


def test_after_an_escalation_the_old_groups_claim_is_no_claim(ledger: Engine, people: dict[str, Operator]) -> None:
    """hana held the case; once it escalates to the managers nobody holds it, max may claim it, and hana may no
    longer release it (it is not her group's)."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))
    escalate_in_ledger(ledger, minutes=30)

    stale = case_claim(ledger, CASE)
    listed = open_cases(ledger, now=at(31))[0]
    taken = claim_case(ledger, CASE, people["max"], at=at(32))
    hanas_release = refusal(lambda: release_case(ledger, CASE, people["hana"], at=at(33)))

    assert (None, None, MANAGERS) == (stale.claimed_by, listed.claimed_by, stale.owner_group)
    assert ("max", True) == (taken.claimed_by, taken.changed)
    assert "not-owner" == hanas_release[0]


def test_a_holder_moved_out_of_the_group_holds_the_case_no_more(ledger: Engine, people: dict[str, Operator]) -> None:
    """The ledger is read at each act: hana's groups changed to the kitchen's, so her claim no longer counts and
    hugo may hand the case to himself."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))
    with Session(ledger) as session:
        row = session.get(OperatorRow, "hana")
        assert row is not None
        row.groups = [KITCHEN]
        session.add(row)
        session.commit()

    assert None is case_claim(ledger, CASE).claimed_by
    assert "hugo" == reassign_case(ledger, CASE, people["hugo"], "hugo", at=at(2)).claimed_by


def test_the_history_is_one_timeline_oldest_first(ledger: Engine, people: dict[str, Operator]) -> None:
    """Opened, claimed, commented, a refused decision, released, escalated, claimed by a manager, decided: each with
    what it needs, in time order."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))
    comment_on_case(ledger, CASE, people["hana"], "calling the guest", at=at(2))
    record_refusal(
        ledger,
        RefusalRecord(
            workflow_id=f"reservation-to-pos/{CASE}",
            handoff="reservation-to-pos",
            sequence=1,
            refused=RefusedDecision(
                request=DecisionRequest(case_id=CASE, decision=DecisionKind.APPROVE, operator="chef", reason="yum"),
                refusal="not your group",
                kind=RefusalKind.NOT_OWNER,
                at=at(3),
            ),
        ),
    )
    release_case(ledger, CASE, people["hana"], at=at(4))
    escalate_in_ledger(ledger, minutes=30)
    claim_case(ledger, CASE, people["max"], at=at(31))
    decide_in_ledger(ledger, operator="max", minutes=32)

    history = case_history(ledger, CASE)

    assert [
        ("opened", T0, None, None, FRONT, None, None),
        ("claimed", at(1), "hana", None, None, None, None),
        ("commented", at(2), "hana", None, None, None, "calling the guest"),
        ("refused", at(3), "chef", None, None, "approve", "not your group"),
        ("released", at(4), "hana", None, None, None, None),
        ("escalated", at(30), None, FRONT, MANAGERS, None, None),
        ("claimed", at(31), "max", None, None, None, None),
        ("decided", at(32), "max", None, None, "reject", "no table that big"),
    ] == [(e.kind.value, e.at, e.operator, e.from_group, e.to_group, e.decision, e.text) for e in history]
    detail = case_detail(ledger, CASE, now=at(40))
    assert detail is not None and history == detail.history


@pytest.mark.parametrize("repeat", range(3))
def test_of_operators_claiming_at_once_exactly_one_wins(ledger: Engine, repeat: int) -> None:
    """Eight hosts claim one case at the same moment: one holds it, the seven others are refused naming the winner,
    and the history has one claim."""
    open_a_case(ledger)
    racers = [operator_of(ledger, name) for name in RACERS]

    answers = race([partial(claiming, ledger, who, at(1)) for who in racers])

    winners = [answer for answer in answers if not isinstance(answer, CaseActionRefused)]
    assert 1 == len(winners)
    winner = case_claim(ledger, CASE).claimed_by
    assert winner in RACERS
    refused = [answer for answer in answers if isinstance(answer, CaseActionRefused)]
    assert [CaseActionRefusalKind.HELD_BY_ANOTHER] * 7 == [r.kind for r in refused]
    assert all(f"held by {winner}" in r.message for r in refused)
    assert [("claimed", winner, None, None)] == acts(ledger)


def test_of_operators_taking_over_a_stale_claim_at_once_exactly_one_wins(ledger: Engine) -> None:
    """After an escalation, eight managers race for the case the front-of-house host held: one wins."""
    add_operator(ledger, "hana", [FRONT], declared_groups=GROUPS)
    open_a_case(ledger)
    claim_case(ledger, CASE, operator_named(ledger, "hana"), at=at(1))
    escalate_in_ledger(ledger)
    managers = [operator_of(ledger, f"manager{n}", MANAGERS) for n in range(8)]

    answers = race([partial(claiming, ledger, who, at(31)) for who in managers])

    assert 1 == len([answer for answer in answers if not isinstance(answer, CaseActionRefused)])
    with Session(ledger) as session:
        claims = session.exec(
            select(func.count()).select_from(CaseEventRow).where(CaseEventRow.kind == "claimed")
        ).one()
    assert 2 == claims


def test_a_case_that_keeps_changing_hands_is_refused_after_a_few_looks(
    ledger: Engine, people: dict[str, Operator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If every look loses its race, the claim gives up, says to read the case again, and writes nothing. (Faked:
    five races lost in a row cannot be produced on demand; the real race is the test above.)"""
    open_a_case(ledger)
    monkeypatch.setattr(case_history_module, "_change_holder", lambda *_args: False)

    kind, words = refusal(lambda: claim_case(ledger, CASE, people["hana"], at=at(1)))

    assert ("held-by-another", None, []) == (kind, case_claim(ledger, CASE).claimed_by, acts(ledger))
    assert "changed hands 5 times while this was tried; read it again, then retry" in words


def test_a_decision_on_a_held_case_is_for_its_holder(ledger: Engine, people: dict[str, Operator]) -> None:
    """The claim check refuses hugo on hana's case, naming her; hana passes, and so do those the workflow judges
    (a chef, an unknown case), and everyone once nobody holds the case."""
    open_a_case(ledger)
    check_claim_for_decision(ledger, CASE, people["hugo"])  # nobody holds it
    claim_case(ledger, CASE, people["hana"], at=at(1))

    kind, words = refusal(lambda: check_claim_for_decision(ledger, CASE, people["hugo"]))
    check_claim_for_decision(ledger, CASE, people["hana"])
    check_claim_for_decision(ledger, CASE, people["chef"])
    check_claim_for_decision(ledger, "C-nope", people["hugo"])

    assert "held-by-another" == kind
    assert "held by hana since 2026-12-04 18:01:00 UTC: only hana decides it while they hold it" in words


def test_a_first_approval_opens_a_held_case_to_the_second_pair_of_eyes(
    ledger: Engine, people: dict[str, Operator]
) -> None:
    """Four eyes: once hana, who holds the case, gave the first approval, hugo may give the second (the workflow
    judges it); a first approval from before an escalation opens nothing in the next group."""
    open_a_case(ledger)
    claim_case(ledger, CASE, people["hana"], at=at(1))
    first_approval(ledger, "hana", at(2))

    check_claim_for_decision(ledger, CASE, people["hugo"])
    body = BulkDecisionBody(case_ids=[CASE], decision=DecisionKind.APPROVE, reason="agreed")
    assert [None] == [p.refused for p in plan_decisions(ledger, body, people["hugo"])]

    escalate_in_ledger(ledger, minutes=30)
    claim_case(ledger, CASE, people["max"], at=at(31))
    second_manager = operator_of(ledger, "mia", MANAGERS)
    assert "held-by-another" == refusal(lambda: check_claim_for_decision(ledger, CASE, second_manager))[0]


def test_a_bulk_plan_sends_each_case_or_says_why_not(ledger: Engine, people: dict[str, Operator]) -> None:
    """In the order named: a free case gets its request, hana's held case and an unknown id are refused outcomes."""
    open_a_case(ledger, CASE)
    other = open_a_case(ledger, "C-000000000002")
    claim_case(ledger, CASE, people["hana"], at=at(1))
    body = BulkDecisionBody(
        case_ids=["C-000000000002", CASE, "C-nope"], decision=DecisionKind.REJECT, reason="  fully booked "
    )

    planned = plan_decisions(ledger, body, people["hugo"])

    assert ["C-000000000002", CASE, "C-nope"] == [p.case_id for p in planned]
    first = planned[0]
    assert first.request is not None
    assert (other, "hugo", ("front-of-house",), "fully booked", DecisionKind.REJECT, None) == (
        first.workflow_id,
        first.request.operator,
        first.request.operator_groups,
        first.request.reason,
        first.request.decision,
        first.refused,
    )
    assert [("held-by-another", None), ("unknown-case", None)] == [
        (p.refused.kind if p.refused else None, p.request) for p in planned[1:]
    ]


def test_a_bulk_plan_takes_the_cases_of_one_handoff(ledger: Engine, people: dict[str, Operator]) -> None:
    """Cases of two handoffs, or not of the handoff named, are a BulkDecisionProblem listing them by handoff."""
    open_a_case(ledger, CASE)
    open_a_case(ledger, "C-000000000002", handoff="lead-to-invoice")
    both = BulkDecisionBody(case_ids=[CASE, "C-000000000002"], decision=DecisionKind.REJECT, reason="r")
    named = BulkDecisionBody(case_ids=[CASE], decision=DecisionKind.REJECT, reason="r", handoff="lead-to-invoice")

    with pytest.raises(BulkDecisionProblem) as mixed:
        plan_decisions(ledger, both, people["hana"])
    with pytest.raises(BulkDecisionProblem) as wrong:
        plan_decisions(ledger, named, people["hana"])

    assert ("mixed-handoffs", "wrong-handoff") == (mixed.value.kind, wrong.value.kind)
    assert "of 2 handoffs (lead-to-invoice: C-000000000002; reservation-to-pos: C-000000000001)" in str(mixed.value)
    assert "Not every case is of 'lead-to-invoice' (reservation-to-pos: C-000000000001)" in str(wrong.value)


# -- helpers ----------------------------------------------------------------------------------------------------------


def first_approval(ledger: Engine, operator: str, moment: datetime) -> None:
    """A four-eyes first approval, in case_events as the workflow's ledger activity keeps it."""
    with Session(ledger) as session:
        session.add(
            CaseEventRow(
                case_id=CASE,
                workflow_id=f"reservation-to-pos/{CASE}",
                kind="first-approval",
                operator=operator,
                text="approve: VIP",
                at=moment,
            )
        )
        session.commit()


def operator_of(ledger: Engine, name: str, group: str = FRONT) -> Operator:
    add_operator(ledger, name, [group], declared_groups=GROUPS)
    return operator_named(ledger, name)


def claiming(ledger: Engine, who: Operator, moment: datetime) -> CaseClaim | CaseActionRefused:
    """`who` claims the case: the claim, or the refusal."""
    try:
        return claim_case(ledger, CASE, who, at=moment)
    except CaseActionRefused as refused:
        return refused


def race(actions: list[Callable[[], T]]) -> list[T]:
    """Run each action in a thread of its own, all released at the same moment; their answers."""
    start = threading.Barrier(len(actions))

    def at_once(action: Callable[[], T]) -> T:
        start.wait()
        return action()

    with ThreadPoolExecutor(max_workers=len(actions)) as pool:
        return list(pool.map(at_once, actions))

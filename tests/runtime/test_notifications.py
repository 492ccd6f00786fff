"""The owner group hears about its cases through the app's notifiers, on the real dev server: when a case opens, when
it escalates, and when a fifth of a group's SLA is left; once per case, event and notifier, with the case's link.

The receivers are real local servers (an HTTP server for the webhook and Slack, aiosmtpd for e-mail), the fakes sit
only where the operators' own tools would be (see tests/activities/test_notifications.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from handoff import Handoffs, WriteOutcome
from handoff.activities.ledger.tables import NoticeRow
from handoff.schemas.contract import DecisionKind, ExceptionPolicy
from handoff.schemas.runs import Stage
from handoff.workers.notifiers import EmailNotifier, SlackNotifier, WebhookNotifier
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.activities.test_notifications import RECIPIENTS, SECRET, SENDER, HttpReceiver, SmtpReceiver
from tests.workflows.sample_contracts import GROUPS, ready_contract

PUBLIC_URL = "https://handoff.example.test"
Runner = Callable[[Handoffs], AbstractAsyncContextManager[HandoffKit]]
GUEST = "Zebedee Quill"
"""A personal value of the payload: it must reach no notification."""


class Pos:
    """The delivery target: takes every record (deliveries are not what these tests are about)."""

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        return WriteOutcome.WRITTEN


def _app(http: HttpReceiver, smtp: SmtpReceiver, *, sla: timedelta = timedelta(hours=4)) -> Handoffs:
    policy = ExceptionPolicy(owner="hosts", escalation=("managers",), sla=sla, on_timeout=DecisionKind.REJECT)
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(exceptions=policy),))
    app.source("bookings")
    app.system("pos", Pos())
    app.notify(WebhookNotifier(f"{http.url}/hook", SECRET, timeout=5))
    app.notify(SlackNotifier(f"{http.url}/slack", timeout=5))
    app.notify(EmailNotifier("127.0.0.1", smtp.port, SENDER, RECIPIENTS, timeout=5))
    return app


def _booking_without_party_size() -> dict[str, Any]:
    """Breaks the contract's one rule (the party size is required): a case opens."""
    return {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}"}, "guest": {"name": GUEST}}


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def kit_for(client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    """Runs a worker for an app, with HANDOFF_PUBLIC_URL set: the links must point there."""
    monkeypatch.setenv("HANDOFF_PUBLIC_URL", PUBLIC_URL)
    return lambda app: running_handoffs(client, app, tmp_path)


async def _eventually(holds: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not holds():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.05)


def _hooks(http: HttpReceiver) -> list[tuple[str, str, str]]:
    """(case, event, group) of each webhook notice taken."""
    return sorted((b["case_id"], b["event"], b["owner_group"]) for b in (r.json() for r in http.taken("/hook")))


def _everything_sent(http: HttpReceiver, smtp: SmtpReceiver) -> str:
    return "\n".join(
        [*(r.body.decode() for r in http.calls("/hook") + http.calls("/slack")), *(str(m.message) for m in smtp.mails)]
    )


def _recorded(kit: HandoffKit, workflow_id: str) -> list[tuple[str, str, str]]:
    with Session(kit.ledger) as session:
        rows = session.exec(select(NoticeRow).where(NoticeRow.workflow_id == workflow_id)).all()
    return sorted((row.event, row.owner_group, row.notifier) for row in rows)


async def test_an_opened_case_is_notified_once_through_each_notifier_with_its_link(
    kit_for: Runner, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """One webhook call, one Slack message, one e-mail to the hosts, each linking the case's page; no payload value."""
    async with kit_for(_app(http, smtp)) as kit:
        accepted = await kit.send("booking.confirmed", _booking_without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        await _eventually(lambda: bool(http.taken("/hook") and http.taken("/slack") and smtp.mails), "the notices")
        await kit.decide(accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="ana", groups=("hosts",))
        result = await kit.result(accepted.workflow_id)

    link = f"{PUBLIC_URL}/inbox/cases/{case.id}"
    assert Stage.DELIVERED == result.stage
    [hook] = http.taken("/hook")
    assert (case.id, "opened", "hosts", link) == tuple(
        hook.json()[k] for k in ("case_id", "event", "owner_group", "link")
    )
    [slack] = http.taken("/slack")
    assert link in slack.json()["text"]
    [mail] = smtp.mails
    assert RECIPIENTS["hosts"] == mail.recipients and link in mail.message.get_content()
    assert GUEST not in _everything_sent(http, smtp)
    assert [("opened", "hosts", "email"), ("opened", "hosts", "slack"), ("opened", "hosts", "webhook")] == _recorded(
        kit, accepted.workflow_id
    )


async def test_nobody_deciding_brings_a_warning_an_escalation_and_the_next_groups_warning(
    kit_for: Runner, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """With a 3-second SLA: opened and warned (hosts), escalated and warned (managers), then the contract rejects."""
    async with kit_for(_app(http, smtp, sla=timedelta(seconds=3))) as kit:
        accepted = await kit.send("booking.confirmed", _booking_without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        result = await kit.result(accepted.workflow_id)
        await _eventually(lambda: 4 == len(http.taken("/slack")) == len(smtp.mails), "every notice")

    assert Stage.REJECTED == result.stage
    expected = [
        (case.id, "escalated", "managers"),
        (case.id, "opened", "hosts"),
        (case.id, "sla-warning", "hosts"),
        (case.id, "sla-warning", "managers"),
    ]
    assert expected == _hooks(http)
    assert 4 == len(http.calls("/hook")) == len(http.calls("/slack"))
    assert [
        ["hosts@example.test", "duty-host@example.test"],
        ["hosts@example.test", "duty-host@example.test"],
        ["managers@example.test"],
        ["managers@example.test"],
    ] == sorted(mail.recipients for mail in smtp.mails)
    notices = {(b["event"], b["owner_group"]): b for b in (r.json() for r in http.taken("/hook"))}
    at = {key: datetime.fromisoformat(notice["at"]) for key, notice in notices.items()}
    deadline = {key: datetime.fromisoformat(notice["sla_deadline"]) for key, notice in notices.items()}
    # Each group is warned once four fifths of its own SLA have passed, and its SLA ends a fifth later: the run's
    # timers say so exactly. The notices' times (workflow time) follow them, later by as long as a loaded machine
    # takes to run the workflow task that a timer fired.
    history = await kit.client.get_workflow_handle(accepted.workflow_id).fetch_history()
    timers = [
        event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for event in history.events
        if event.HasField("timer_started_event_attributes")
    ]
    assert [timedelta(seconds=s) for s in (2.4, 0.6, 2.4, 0.6)] == timers
    assert timedelta(seconds=2.4) <= at["sla-warning", "hosts"] - at["opened", "hosts"]
    assert timedelta(seconds=2.4) <= at["sla-warning", "managers"] - at["escalated", "managers"]
    assert deadline["escalated", "managers"] == deadline["sla-warning", "managers"] > deadline["opened", "hosts"]
    assert 12 == len(_recorded(kit, accepted.workflow_id))


async def test_a_failing_receiver_is_retried_and_the_run_goes_on_meanwhile(
    kit_for: Runner, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """While the webhook answers 503, the case is decided and the next one opens; once it is back, each notice arrives
    there once, and Slack and e-mail, which took theirs at the first attempt, get nothing twice."""
    http.refusing.add("/hook")
    async with kit_for(_app(http, smtp)) as kit:
        accepted = await kit.send("booking.confirmed", _booking_without_party_size())
        first = await kit.open_case(accepted.workflow_id)
        await _eventually(lambda: len(http.calls("/hook")) >= 2, "a retry of the webhook")

        # "Retry" validates the same payload again: the run moves on, and a second case opens.
        await kit.decide(accepted.workflow_id, first.id, DecisionKind.RETRY, operator="ana", groups=("hosts",))
        second = await kit.open_case(accepted.workflow_id)
        await _eventually(lambda: 2 == len(http.taken("/slack")) == len(smtp.mails), "the second case's notices")
        assert [] == http.taken("/hook")  # the receiver is still down, and the run did not wait for it

        http.refusing.clear()
        await _eventually(lambda: 2 == len(http.taken("/hook")), "the webhook's notices once it is back")
        await kit.decide(accepted.workflow_id, second.id, DecisionKind.APPROVE, operator="ana", groups=("hosts",))
        result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERED == result.stage and first.id != second.id
    assert sorted([(first.id, "opened", "hosts"), (second.id, "opened", "hosts")]) == _hooks(http)
    answers = {
        case.id: [r.status for r in http.calls("/hook") if r.json()["case_id"] == case.id] for case in (first, second)
    }
    assert 503 == answers[first.id][0] == answers[first.id][1] == answers[second.id][0]
    assert [200, 200] == [statuses[-1] for statuses in answers.values()]
    assert (2, 2) == (len(http.calls("/slack")), len(smtp.mails))
    assert 6 == len(_recorded(kit, accepted.workflow_id))


async def test_a_notice_still_failing_when_its_run_ends_arrives_once_the_receiver_is_back(
    kit_for: Runner, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """The notice waits in the ledger's outbox, not in the run: Temporal drops a closed run's activity retries, the
    outbox keeps trying after the case was decided and its run ended."""
    http.refusing.add("/hook")
    async with kit_for(_app(http, smtp)) as kit:
        accepted = await kit.send("booking.confirmed", _booking_without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        await _eventually(lambda: len(http.calls("/hook")) >= 1, "a first, refused, try of the webhook")
        await kit.decide(accepted.workflow_id, case.id, DecisionKind.REJECT, operator="ana", groups=("hosts",))
        result = await kit.result(accepted.workflow_id)
        assert Stage.REJECTED == result.stage

        http.refusing.clear()
        await _eventually(lambda: 1 == len(http.taken("/hook")), "the notice after its run ended", timeout=30)

    assert [(case.id, "opened", "hosts")] == _hooks(http)
    assert (1, 1) == (len(http.taken("/slack")), len(smtp.mails))  # sent at the first try, never again

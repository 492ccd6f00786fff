"""The `notify_owners` activity and the notifiers, on real ledgers (SQLite, PostgreSQL) and real receivers: a local
HTTP server takes the webhook and the Slack posts, a local SMTP server (aiosmtpd) the e-mail. Fakes only at the far
end of each notifier, where the operators' tools would be; the receivers are shared with the runtime tests.
"""

from __future__ import annotations

import email
import email.policy
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError

from handoff.activities.ledger.tables import NoticeRow
from handoff.activities.notifications import Notification, NotificationActivities, notice_id
from handoff.schemas.activities import CaseNotice, NoticeEvent
from handoff.workers.api.signatures import parse_signature
from handoff.workers.app import Handoffs
from handoff.workers.links import case_link, public_url
from handoff.workers.notifiers import (
    NOTICE_ID_HEADER,
    EmailNotifier,
    SlackNotifier,
    WebhookNotifier,
    deadline,
)
from handoff.workers.request_signing import SIGNATURE_HEADER, sign
from handoff.workers.settings import Settings

PUBLIC_URL = "https://handoff.example.test"
SECRET = "webhook-secret-shared-with-the-receiver"
RECIPIENTS = {"hosts": ["hosts@example.test", "duty-host@example.test"], "managers": ["managers@example.test"]}
SENDER = "handoff@example.test"


# -- the far end: a local HTTP receiver and a local SMTP server ------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One POST the HTTP receiver answered."""

    path: str
    headers: dict[str, str]
    """Names in lower case."""
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """A real HTTP server on 127.0.0.1, in a thread: records every POST, and answers 503 on the paths it refuses."""

    def __init__(self) -> None:
        self.refusing: set[str] = set()
        self._received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = 503 if self.path in receiver.refusing else 200
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    receiver._received.append(Received(self.path, headers, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test asserts on what arrived; stderr stays quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def calls(self, path: str) -> list[Received]:
        """Every POST to `path`, answered or refused."""
        with self._lock:
            return [request for request in self._received if request.path == path]

    def taken(self, path: str) -> list[Received]:
        """The POSTs to `path` it answered 200."""
        return [request for request in self.calls(path) if request.status == 200]

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1, in its own thread: keeps every message it is given."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.port = _free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()


def _free_port() -> int:
    # aiosmtpd's controller checks its server by connecting to the port it was given, so it cannot take port 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def notifiers_to(http: HttpReceiver, smtp: SmtpReceiver) -> Handoffs:
    """An app that notifies through all three notifiers, to these receivers."""
    app = Handoffs()
    app.notify(WebhookNotifier(f"{http.url}/hook", SECRET, timeout=5))
    app.notify(SlackNotifier(f"{http.url}/slack", timeout=5))
    app.notify(EmailNotifier("127.0.0.1", smtp.port, SENDER, RECIPIENTS, timeout=5))
    return app


# -- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


def _activities(app: Handoffs, ledger: Engine) -> NotificationActivities:
    return NotificationActivities(app, ledger, link=lambda case_id: case_link(PUBLIC_URL, case_id))


def _notice(event: NoticeEvent = NoticeEvent.OPENED, *, group: str = "hosts", case_id: str = "") -> CaseNotice:
    case_id = case_id or f"C-{uuid.uuid4().hex[:12]}"
    return CaseNotice(
        workflow_id="table-booking/B-1",
        handoff="table-booking",
        case_id=case_id,
        event=event,
        owner_group=group,
        sla_deadline=datetime(2026, 12, 4, 18, 30, tzinfo=UTC),
        reasons=["The POS sizes the table from the party.", "Tables <T9> & up are outside"],
        at=datetime(2026, 12, 4, 18, 0, tzinfo=UTC),
    )


def _recorded(ledger: Engine, case_id: str) -> list[tuple[str, str, str]]:
    with Session(ledger) as session:
        rows = session.exec(select(NoticeRow).where(NoticeRow.case_id == case_id)).all()
    return sorted((row.event, row.owner_group, row.notifier) for row in rows)


# -- the activity ---------------------------------------------------------------------------------------------------


async def test_each_notifier_sends_a_notice_once_however_often_the_activity_runs(
    ledger: Engine, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """A retried activity sends nothing twice; another event of the same case is a notice of its own."""
    activities = _activities(notifiers_to(http, smtp), ledger)
    opened = _notice()
    escalated = _notice(NoticeEvent.ESCALATED, group="managers", case_id=opened.case_id)

    await activities.notify_owners(opened)
    await activities.notify_owners(opened)
    await activities.notify_owners(escalated)

    link = f"{PUBLIC_URL}/inbox/cases/{opened.case_id}"
    assert [link, link] == [request.json()["link"] for request in http.taken("/hook")]
    assert 2 == len(http.taken("/slack"))
    assert all(link in request.json()["text"] for request in http.taken("/slack"))
    assert 2 == len(smtp.mails)
    assert all(link in mail.message.get_content() for mail in smtp.mails)
    assert [
        ("escalated", "managers", "email"),
        ("escalated", "managers", "slack"),
        ("escalated", "managers", "webhook"),
        ("opened", "hosts", "email"),
        ("opened", "hosts", "slack"),
        ("opened", "hosts", "webhook"),
    ] == _recorded(ledger, opened.case_id)


async def test_a_failing_notifier_raises_and_the_next_attempt_sends_only_what_is_missing(
    ledger: Engine, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """The webhook answers 503: the activity raises for a retry, Slack and e-mail are sent once, the webhook later."""
    activities = _activities(notifiers_to(http, smtp), ledger)
    notice = _notice()
    http.refusing.add("/hook")

    with pytest.raises(ApplicationError) as failed:
        await activities.notify_owners(notice)

    assert "NotifierFailed" == failed.value.type and not failed.value.non_retryable
    assert "webhook" in str(failed.value) and "503" in str(failed.value)
    assert [("opened", "hosts", "email"), ("opened", "hosts", "slack")] == _recorded(ledger, notice.case_id)

    with pytest.raises(ApplicationError):
        await activities.notify_owners(notice)  # still down: only the webhook is tried again
    http.refusing.clear()
    await activities.notify_owners(notice)

    assert ([503, 503, 200], 1, 1) == (
        [request.status for request in http.calls("/hook")],
        len(http.calls("/slack")),
        len(smtp.mails),
    )
    assert 3 == len(_recorded(ledger, notice.case_id))


async def test_a_receiver_that_cannot_be_reached_raises_and_is_not_recorded(
    ledger: Engine, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """A refused connection is a failure like an error answer: nothing recorded for it, so the retry sends it."""
    app = Handoffs()
    app.notify(WebhookNotifier(f"http://127.0.0.1:{_free_port()}/hook", SECRET, timeout=2))
    app.notify(SlackNotifier(f"{http.url}/slack", timeout=5))
    notice = _notice()

    with pytest.raises(ApplicationError) as failed:
        await _activities(app, ledger).notify_owners(notice)

    assert "ConnectError" in str(failed.value)
    assert [("opened", "hosts", "slack")] == _recorded(ledger, notice.case_id)


async def test_an_app_without_notifiers_sends_and_records_nothing(ledger: Engine) -> None:
    """Every run starts the activity: with no notifier configured it does nothing, and succeeds."""
    notice = _notice()

    await _activities(Handoffs(), ledger).notify_owners(notice)

    assert [] == _recorded(ledger, notice.case_id)


# -- what each notifier sends ----------------------------------------------------------------------------------------


async def test_the_webhook_is_signed_as_handoff_signs_events_and_carries_the_notice_id(
    ledger: Engine, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """The receiver checks HMAC-SHA256 of "<t>.<body>" with the shared secret; the notice id names it for dedupe."""
    notice = _notice(NoticeEvent.SLA_WARNING)

    await _activities(notifiers_to(http, smtp), ledger).notify_owners(notice)

    [request] = http.taken("/hook")
    signature = parse_signature(request.headers[SIGNATURE_HEADER.lower()])
    assert [sign(SECRET, signature.timestamp, request.body)] == list(signature.v1)
    assert not hmac.compare_digest(sign("another secret", signature.timestamp, request.body), signature.v1[0])
    assert abs(time.time() - signature.timestamp) < 60
    body = request.json()
    assert notice_id(notice) == request.headers[NOTICE_ID_HEADER.lower()] == body["notice_id"]
    assert (notice.case_id, "sla-warning", "hosts", notice.reasons) == (
        body["case_id"],
        body["event"],
        body["owner_group"],
        body["reasons"],
    )
    assert "application/json" == request.headers["content-type"]


def test_the_notice_id_names_the_case_event_and_group() -> None:
    """The same notice always has the same id (a receiver drops a copy by it); another event or group another."""
    opened = _notice()

    same = _notice(case_id=opened.case_id).model_copy(update={"at": datetime.now(UTC)})
    others = {
        notice_id(_notice(NoticeEvent.ESCALATED, case_id=opened.case_id)),
        notice_id(_notice(group="managers", case_id=opened.case_id)),
        notice_id(_notice()),
    }

    assert notice_id(opened) == notice_id(same)
    assert notice_id(opened) not in others and 3 == len(others)


async def test_slack_gets_the_headline_the_reasons_escaped_and_the_link(
    ledger: Engine, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """Slack's mrkdwn would read `<...>` as a link: a reason reads as written; the link opens the case."""
    notice = _notice(NoticeEvent.ESCALATED, group="managers")

    await _activities(notifiers_to(http, smtp), ledger).notify_owners(notice)

    [request] = http.taken("/slack")
    message = request.json()
    link = f"<{PUBLIC_URL}/inbox/cases/{notice.case_id}|Open case {notice.case_id}>"
    assert f"Case {notice.case_id} of table-booking was escalated to managers" in message["text"]
    assert link in message["text"]
    blocks = "\n".join(block["text"]["text"] for block in message["blocks"])
    assert "Tables &lt;T9&gt; &amp; up are outside" in blocks and "<T9>" not in blocks
    assert link in blocks and "Decide by 2026-12-04 18:30:00 UTC" in blocks


async def test_the_email_goes_to_the_owner_groups_recipients_with_the_link(
    ledger: Engine, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """An escalation to managers is mailed to the managers' addresses only, its Message-ID the notice's id."""
    notice = _notice(NoticeEvent.ESCALATED, group="managers")

    await _activities(notifiers_to(http, smtp), ledger).notify_owners(notice)

    [mail] = smtp.mails
    assert (SENDER, ["managers@example.test"]) == (mail.sender, mail.recipients)
    # Folded onto a line of its own; Python's parser keeps the space that unfolding leaves after "Subject:".
    subject = mail.message["Subject"].strip()
    assert f"[Handoff] Case {notice.case_id} of table-booking was escalated to managers" == subject
    assert f"<{notice_id(notice)}@handoff>" == mail.message["Message-ID"]
    body = mail.message.get_content()
    assert f"Open the case: {PUBLIC_URL}/inbox/cases/{notice.case_id}" in body
    assert "The POS sizes the table from the party." in body and "Decide by 2026-12-04 18:30:00 UTC" in body


async def test_a_group_without_addresses_gets_no_email_and_the_others_still_notify(
    ledger: Engine, http: HttpReceiver, smtp: SmtpReceiver
) -> None:
    """No address for the group is a gap in the app's configuration, not a failure to retry ten times."""
    notice = _notice(group="kitchen")

    await _activities(notifiers_to(http, smtp), ledger).notify_owners(notice)

    assert ([], 1, 1) == (smtp.mails, len(http.taken("/hook")), len(http.taken("/slack")))


# -- configuration --------------------------------------------------------------------------------------------------


def test_the_case_link_is_under_the_public_url_or_the_apis_own_address() -> None:
    """HANDOFF_PUBLIC_URL when set (a trailing slash or not); else the API's address on this machine."""
    assert "http://127.0.0.1:8123/inbox/cases/C-1" == case_link(public_url(Settings(api_port=8123)), "C-1")
    configured = Settings(public_url="https://handoff.example.com/")
    assert "https://handoff.example.com/inbox/cases/C-1" == case_link(public_url(configured), "C-1")
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url="handoff.example.com")


def test_notifier_names_are_unique_within_an_app() -> None:
    """The ledger keeps a notice per notifier name: two webhooks need two names."""
    app = Handoffs()
    app.notify(WebhookNotifier("https://a.example.test/hook", SECRET))

    with pytest.raises(ValueError, match="already has a notifier named 'webhook'"):
        app.notify(WebhookNotifier("https://b.example.test/hook", SECRET))
    app.notify(WebhookNotifier("https://b.example.test/hook", SECRET, name="webhook-b"))

    assert ["webhook", "webhook-b"] == [notifier.name for notifier in app.notifiers]


def test_the_sla_deadline_is_shown_in_utc() -> None:
    """Operators in several time zones read one clock: a deadline given in another zone is shown in UTC."""
    in_paris = datetime(2026, 12, 4, 19, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    notice = _notice().model_copy(update={"sla_deadline": in_paris})

    shown = deadline(Notification(notice=notice, link=PUBLIC_URL, notice_id=notice_id(notice)))

    assert "Decide by 2026-12-04 19:30:00 UTC" == shown

"""The notifiers an app may configure (`app.notify(...)`): how a case's owner group hears that the case waits for them.

    app.notify(WebhookNotifier("https://ops.example.com/hooks/handoff", secret=os.environ["HOOK_SECRET"]))
    app.notify(SlackNotifier(os.environ["SLACK_WEBHOOK_URL"]))
    app.notify(EmailNotifier("smtp.example.com", 587, "handoff@example.com",
                             {"front-desk": ["desk@example.com"]}, username=..., password=..., starttls=True))

Each one sends what happened (opened, escalated, a fifth of the SLA left), the group, the deadline, the rules'
reasons and the link to the case's inbox page: never the payload's values, which stay behind the inbox's sign-in.
Each call has a timeout, and an error answer or a failed connection raises, so the activity (`notify_owners`,
`handoff.activities.notifications`) is retried; the ledger makes sure a notifier that succeeded is not called again.
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from collections.abc import Mapping
from datetime import UTC
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import httpx
import structlog

from handoff.activities.notifications import Notification
from handoff.schemas.activities import NoticeEvent
from handoff.workers.request_signing import SIGNATURE_HEADER, signature_header

log = structlog.get_logger(__name__)

NOTICE_ID_HEADER = "Handoff-Notice-Id"
"""The notice's id, the same on every attempt: a receiver that sees it twice drops the copy."""
DEFAULT_TIMEOUT = 10.0
"""Seconds a notifier waits for its receiver: well within the activity's 30, since the notifiers send at once."""


class NotifierError(Exception):
    """A receiver answered, but did not take the notice: the activity is retried."""


def headline(notification: Notification) -> str:
    """One line saying what happened to which case, for whom: a subject, a chat message's first line."""
    notice = notification.notice
    case = f"Case {notice.case_id} of {notice.handoff}"
    if notice.event is NoticeEvent.BUDGET_HELD:  # no case: the handoff spent its exception budget
        return f"{notice.handoff} is held ({notice.case_id}): too many of its runs opened a case"
    if notice.event is NoticeEvent.ESCALATED:
        return f"{case} was escalated to {notice.owner_group}"
    if notice.event is NoticeEvent.SLA_WARNING:
        return f"{case} still waits for {notice.owner_group}: a fifth of the SLA is left"
    return f"{case} waits for {notice.owner_group}"


def deadline(notification: Notification) -> str:
    """By when the group must decide, in UTC: operators read it in several time zones."""
    moment = notification.notice.sla_deadline
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"Decide by {moment:%Y-%m-%d %H:%M:%S} UTC"


class WebhookNotifier:
    """POSTs the notice as JSON, signed as Handoff's event sources sign events (`Handoff-Signature`).

    The body is the notice's fields plus `notice_id` and `link`. The receiver checks `Handoff-Signature:
    t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the shared secret, and may drop a notice whose
    `Handoff-Notice-Id` it has seen (a notice whose answer was lost is sent again).
    """

    def __init__(self, url: str, secret: str, *, name: str = "webhook", timeout: float = DEFAULT_TIMEOUT) -> None:
        _check_http_url(url, "WebhookNotifier")
        if not secret:
            raise ValueError("WebhookNotifier needs a secret: the receiver checks the signature with it")
        self.name = name
        self._url = url
        self._secret = secret
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        body = webhook_body(notification)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header([self._secret], body),
            NOTICE_ID_HEADER: notification.notice_id,
        }
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.post(self._url, content=body, headers=headers)
        _raise_unless_taken(self.name, response)


def webhook_body(notification: Notification) -> bytes:
    """The webhook's JSON: the notice's fields, its id and the case's link."""
    fields: dict[str, Any] = {
        "notice_id": notification.notice_id,
        "link": notification.link,
        **notification.notice.model_dump(mode="json"),
    }
    return json.dumps(fields, separators=(",", ":")).encode()


class SlackNotifier:
    """Posts a message to a Slack incoming webhook (or a chat that takes Slack's format: Mattermost, Rocket.Chat)."""

    def __init__(self, webhook_url: str, *, name: str = "slack", timeout: float = DEFAULT_TIMEOUT) -> None:
        _check_http_url(webhook_url, "SlackNotifier")
        self.name = name
        self._url = webhook_url  # holds the channel's token: never logged
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.post(self._url, json=slack_message(notification))
        _raise_unless_taken(self.name, response)


def slack_message(notification: Notification) -> dict[str, Any]:
    """`text` for notifications and chats without blocks; `blocks` for Slack: the reasons and a link to the case."""
    notice = notification.notice
    link = f"<{notification.link}|Open case {_slack_escaped(notice.case_id)}>"
    title = _slack_escaped(headline(notification))
    reasons = "\n".join(f"• {_slack_escaped(reason)}" for reason in notice.reasons)
    details = f"*{title}*\n{reasons}" if reasons else f"*{title}*"
    return {
        "text": f"{title}. {deadline(notification)}. {link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": details}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{deadline(notification)}. {link}"}},
        ],
    }


class EmailNotifier:
    """Sends an e-mail to the owner group's addresses over SMTP (with STARTTLS and a login, if given).

    `recipients_by_group` maps each operator group to its addresses; a notice for a group it does not name is not
    e-mailed (a warning is logged). The `Message-ID` is the notice's id, so a copy of a notice sent again is one
    message in most mailboxes.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients_by_group: Mapping[str, list[str]],
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        name: str = "email",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._sender = sender
        self._recipients = {group: list(addresses) for group, addresses in recipients_by_group.items()}
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout

    async def send(self, notification: Notification) -> None:
        notice = notification.notice
        recipients = self._recipients.get(notice.owner_group, [])
        if not recipients:
            log.warning(
                "notice.no_recipients", notifier=self.name, owner_group=notice.owner_group, case_id=notice.case_id
            )
            return
        message = email_message(notification, self._sender, recipients)
        # smtplib blocks: in a thread, so the worker's other activities go on meanwhile.
        await asyncio.to_thread(self._deliver, message, recipients)

    def _deliver(self, message: EmailMessage, recipients: list[str]) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username is not None:
                smtp.login(self._username, self._password or "")
            refused = smtp.send_message(message, to_addrs=recipients)
        if refused:
            # The others have it: sending again would give them a copy, so the refused addresses are only logged.
            log.warning("notice.recipients_refused", notifier=self.name, refused=sorted(refused))


def email_message(notification: Notification, sender: str, recipients: list[str]) -> EmailMessage:
    """The e-mail: the headline as subject; the deadline, the reasons and the link as plain text."""
    notice = notification.notice
    message = EmailMessage()
    message["Subject"] = f"[Handoff] {headline(notification)}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{notification.notice_id}@handoff>"
    message[NOTICE_ID_HEADER] = notification.notice_id
    reasons = "".join(f"  - {reason}\n" for reason in notice.reasons)
    message.set_content(
        f"{headline(notification)}.\n{deadline(notification)}.\n\n"
        + (f"Why it needs a decision:\n{reasons}\n" if reasons else "")
        + f"Open the case: {notification.link}\n"
    )
    return message


def _raise_unless_taken(name: str, response: httpx.Response) -> None:
    # The address is left out of the error: a chat webhook's URL is its secret, and errors reach Temporal's history.
    if not response.is_success:
        raise NotifierError(f"the {name} receiver answered {response.status_code} {response.reason_phrase}")


def _check_http_url(url: str, what: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{what} needs an http:// or https:// address")


def _slack_escaped(text: str) -> str:
    """Slack's mrkdwn reads `<`, `>` and `&` as markup: a reason must read as written, not as a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

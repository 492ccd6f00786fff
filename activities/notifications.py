"""Notifications: tell a case's owner group that the case waits for them, once per case, event, group and notifier.

The workflow starts `notify_owners` without waiting for it when a case opens, escalates, or has a fifth of its SLA
left. The activity hands the notice to every notifier the app configures (`Handoffs.notify`: a webhook, Slack,
e-mail, in `handoff.workers.notifiers`), all at once, each with the link to the case's inbox page.

Once, whatever the retries, by the ledger's `notices` table (unique per case, event, group and notifier). A notifier
*claims* its row before it sends and gives it back when sending raises, so:

- a notifier that succeeded is not sent again when the activity is retried because another one failed;
- a notifier that failed (an error answer, a refused connection, a timeout) is sent again on the next attempt;
- a worker that dies between the claim and the answer leaves the claim: that notice is not sent (at most once).

At most once, rather than at least once, because two of the three channels (chat, e-mail) cannot drop a duplicate,
and a lost notice costs little: the case is in the inbox, and the SLA warning and the escalation notify again. Where a
send times out after the receiver took it, the claim is given back and it is sent again; the notice's id
(`notice_id`, the same for every attempt and notifier) lets a receiver drop the copy: the webhook's
`Handoff-Notice-Id` header, the e-mail's `Message-ID`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.tables import NoticeRow
from handoff.schemas.activities import NOTIFY_OWNERS, CaseNotice

log = structlog.get_logger(__name__)

_NOTICE_IDS = uuid.UUID("6f1d3c52-5b1e-4d0e-9a57-3c1f0b7e2a11")
"""The namespace of notice ids: any fixed value, so that an id depends only on the case, event and group."""


@dataclass(frozen=True)
class Notification:
    """What a notifier sends: the notice, the link to the case's page, and the id a receiver drops copies by."""

    notice: CaseNotice
    link: str
    notice_id: str


class Notifier(Protocol):
    """Something that tells an owner group about a case: a webhook, a chat channel, e-mail.

    `send` raises when the message was not taken (an error answer, no connection, a timeout), so the activity is
    retried; it must time out on its own well within a minute (the activity's limit is 30 seconds).
    """

    @property
    def name(self) -> str:
        """Unique within the app: the ledger records each notice under it (the `notifier` column)."""
        ...

    async def send(self, notification: Notification) -> None: ...


class NotifierProvider(Protocol):
    """What the activity needs from the app: its notifiers, as configured now."""

    @property
    def notifiers(self) -> Sequence[Notifier]: ...


class NotifierFailed(Exception):
    """Some notifiers did not take the notice; the ones that did are recorded, and not sent again on retry."""


def notice_id(notice: CaseNotice) -> str:
    """The same id for a notice's every attempt and notifier: derived from the case, the event and the group."""
    return str(uuid.uuid5(_NOTICE_IDS, f"{notice.case_id}/{notice.event.value}/{notice.owner_group}"))


class NotificationActivities:
    """Sends each notice through every notifier of the app, at most once per notifier (see the module's docstring)."""

    def __init__(self, provider: NotifierProvider, ledger: Engine, *, link: Callable[[str], str]) -> None:
        """`link`: the address of a case's page, from its id (the inbox, at the public URL of the settings)."""
        self._provider = provider
        self._ledger = ledger
        self._link = link

    @activity.defn(name=NOTIFY_OWNERS)
    async def notify_owners(self, notice: CaseNotice) -> None:
        """Send what is not sent yet; raise (so Temporal retries) when a notifier fails, after the others sent."""
        await self.send(notice)

    async def send(self, notice: CaseNotice) -> None:
        """Send the notice through every notifier that has not sent it; raise when one fails, after the others sent.
        The activity's body, and the outbox sender's (`activities.outbox`)."""
        notifiers = list(self._provider.notifiers)
        if not notifiers:
            return  # the app notifies nobody: registered anyway, because every run starts this activity
        notification = Notification(notice=notice, link=self._link(notice.case_id), notice_id=notice_id(notice))
        outcomes = await asyncio.gather(
            *(self._send_once(notifier, notification) for notifier in notifiers), return_exceptions=True
        )
        failed = [
            (notifier.name, outcome)
            for notifier, outcome in zip(notifiers, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]
        if failed:
            listed = "; ".join(f"{name}: {type(error).__name__}: {error}" for name, error in failed)
            raise ApplicationError(
                f"Notice {notice.event.value!r} of case {notice.case_id} could not be sent through {listed}. "
                "It is sent again on the next attempt; the notifiers that took it are not.",
                type=NotifierFailed.__name__,
            )

    async def _send_once(self, notifier: Notifier, notification: Notification) -> None:
        notice = notification.notice
        bound = log.bind(
            handoff=notice.handoff,
            workflow_id=notice.workflow_id,
            case_id=notice.case_id,
            notifier=notifier.name,
            notice_event=notice.event.value,
            owner_group=notice.owner_group,
        )
        claimed = await asyncio.to_thread(claim_notice, self._ledger, notice, notifier.name)
        if not claimed:
            bound.info("notice.already_sent")
            return
        try:
            await notifier.send(notification)
        except BaseException as error:
            # Given back, also when cancelled (the activity timed out): the next attempt sends it. Shielded, so a
            # second cancellation cannot leave the claim behind.
            await asyncio.shield(asyncio.to_thread(release_notice, self._ledger, notice, notifier.name))
            bound.warning("notice.failed", error=f"{type(error).__name__}: {error}")
            raise
        bound.info("notice.sent", notice_id=notification.notice_id)


def claim_notice(engine: Engine, notice: CaseNotice, notifier: str) -> bool:
    """Record the notice as sent through `notifier`, before sending it; False when it is recorded already."""
    try:
        with session_scope(engine) as session:
            if _notice_row(session, notice, notifier) is not None:
                return False
            session.add(
                NoticeRow(
                    case_id=notice.case_id,
                    workflow_id=notice.workflow_id,
                    event=notice.event.value,
                    owner_group=notice.owner_group,
                    notifier=notifier,
                    sent_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        return False  # another attempt claimed it between our look and our insert
    return True


def release_notice(engine: Engine, notice: CaseNotice, notifier: str) -> None:
    """Give back the claim of a notice that could not be sent, so that the next attempt sends it."""
    with session_scope(engine) as session:
        row = _notice_row(session, notice, notifier)
        if row is not None:
            session.delete(row)


def _notice_row(session: Session, notice: CaseNotice, notifier: str) -> NoticeRow | None:
    return session.exec(
        select(NoticeRow).where(
            NoticeRow.case_id == notice.case_id,
            NoticeRow.event == notice.event.value,
            NoticeRow.owner_group == notice.owner_group,
            NoticeRow.notifier == notifier,
        )
    ).first()

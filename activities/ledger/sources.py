"""Event sources in the ledger: the systems that send events, the events each may send, and the secrets they sign
them with; and the signatures already accepted, so that none is accepted twice.

A secret is made here and handed back once. Unlike an API token it is stored as given, not hashed: checking an
HMAC needs the key itself. So the ledger must be protected like any secret store (access, backups, dumps): whoever
reads `source_secrets` can sign events as that source. A source has one active secret, or two while it rotates:
`rotate_secret` adds a new one, keeps the one before it, and drops any older.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.tables import SeenSignatureRow, SourceRow, SourceSecretRow
from handoff.schemas.sources import Source

ACTIVE_SECRETS = 2
"""The newest secret and the one before it: a source rotating may still sign with the older until it switches."""


class SourceProblem(ValueError):
    """A source cannot be added, found or rotated; the message says what to do."""


class DuplicateSource(SourceProblem):
    """A source of that name exists already."""


class UnknownSource(SourceProblem):
    """No source of that name."""


@dataclass(frozen=True)
class SigningSource:
    """What checking a source's signature needs: the events it may send and its active secrets, newest first."""

    name: str
    events: frozenset[str]
    secrets: tuple[str, ...]


def add_source(ledger: Engine, name: str, events: Sequence[str], *, known_events: Collection[str]) -> str:
    """Add `name`, allowed to send `events`, and return its first secret: the only time it is returned.

    Raises `SourceProblem` for a bad name, no event or an event that no handoff is triggered by (not in
    `known_events`), and `DuplicateSource` for a name taken.
    """
    name = name.strip()
    if not name or any(character.isspace() for character in name):
        raise SourceProblem(f"A source name is one word without spaces, got {name!r}.")
    known = ", ".join(sorted(known_events)) or "none"
    if not events:
        raise SourceProblem(f"Source {name!r} needs at least one event it may send (known events: {known}).")
    unknown = sorted(set(events) - set(known_events))
    if unknown:
        raise SourceProblem(f"No handoff is triggered by event(s) {', '.join(unknown)} (known events: {known}).")
    secret = _new_secret()
    now = datetime.now(UTC)
    try:
        with session_scope(ledger) as session:
            if session.get(SourceRow, name) is not None:
                raise DuplicateSource(f"A source named {name!r} exists already; choose another name.")
            session.add(SourceRow(name=name, events=list(dict.fromkeys(events)), created_at=now))
            session.flush()
            session.add(SourceSecretRow(source=name, secret=secret, created_at=now))
    except IntegrityError:
        # Another process added the same name between our check and our insert.
        raise DuplicateSource(f"A source named {name!r} exists already; choose another name.") from None
    return secret


def rotate_secret(ledger: Engine, name: str) -> str:
    """Give `name` a new secret and return it, once; the previous one stays active, any older one is dropped."""
    secret = _new_secret()
    with session_scope(ledger) as session:
        if session.get(SourceRow, name) is None:
            raise _unknown(session, name)
        session.add(SourceSecretRow(source=name, secret=secret, created_at=datetime.now(UTC)))
        session.flush()
        kept = _secret_rows(session, name)[:ACTIVE_SECRETS]
        session.execute(
            delete(SourceSecretRow).where(
                col(SourceSecretRow.source) == name, col(SourceSecretRow.id).not_in([row.id for row in kept])
            )
        )
    return secret


def list_sources(ledger: Engine) -> list[Source]:
    """Every source, by name."""
    with Session(ledger) as session:
        rows = session.exec(select(SourceRow).order_by(SourceRow.name)).all()
        return [_as_source(row, _secret_rows(session, row.name)) for row in rows]


def source_named(ledger: Engine, name: str) -> Source:
    """The source called `name`; `UnknownSource` naming the known sources otherwise."""
    with Session(ledger) as session:
        row = session.get(SourceRow, name)
        if row is None:
            raise _unknown(session, name)
        return _as_source(row, _secret_rows(session, name))


def signing_source(ledger: Engine, name: str) -> SigningSource | None:
    """The events and active secrets of the source called `name`, or None when there is none."""
    with Session(ledger) as session:
        row = session.get(SourceRow, name)
        if row is None:
            return None
        found = _secret_rows(session, name)[:ACTIVE_SECRETS]
        return SigningSource(name=name, events=frozenset(row.events), secrets=tuple(r.secret for r in found))


def remember_signatures(ledger: Engine, source: str, signatures: Collection[str], *, expires_at: datetime) -> bool:
    """Record that `source` sent these signatures, until `expires_at`; False (nothing recorded) when one of them
    was recorded already: a replay.

    The primary key decides, so API processes sharing a ledger agree. Signatures whose window has passed are
    deleted on the way: they could not be accepted again anyway, so the table holds only a window's worth.
    """
    now = datetime.now(UTC)
    try:
        with session_scope(ledger) as session:
            session.execute(delete(SeenSignatureRow).where(col(SeenSignatureRow.expires_at) < now))
            for signature in dict.fromkeys(signatures):
                session.add(SeenSignatureRow(source=source, signature=signature, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def _secret_rows(session: Session, name: str) -> list[SourceSecretRow]:
    """The source's secrets, newest first."""
    query = (
        select(SourceSecretRow)
        .where(SourceSecretRow.source == name)
        .order_by(col(SourceSecretRow.created_at).desc(), col(SourceSecretRow.id).desc())
    )
    return list(session.exec(query).all())


def _unknown(session: Session, name: str) -> UnknownSource:
    known = ", ".join(session.exec(select(SourceRow.name).order_by(SourceRow.name)).all()) or "none"
    return UnknownSource(f"No source named {name!r} (known sources: {known}). Add one with `handoff sources add`.")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_source(row: SourceRow, secret_rows: list[SourceSecretRow]) -> Source:
    active = secret_rows[:ACTIVE_SECRETS]
    rotated_at = _utc(active[0].created_at) if len(active) > 1 else None
    return Source(
        name=row.name,
        events=tuple(row.events),
        created_at=_utc(row.created_at),
        active_secrets=len(active),
        rotated_at=rotated_at,
    )

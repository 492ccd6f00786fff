"""Operators in the ledger: who may decide cases, for which groups, and the hash of their API token.

A token is created here, handed back once, and stored only as its SHA-256 hash, so a copy of the ledger lets no one
act as an operator. The CLI decides `--as <name>` (the groups come from here); the API resolves a bearer token.
Groups must be declared in the catalog: the caller passes the declared names, because this layer may not import
the catalog (activities import schemas only).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.tables import OperatorRow
from handoff.schemas.operators import Operator


class OperatorProblem(ValueError):
    """An operator cannot be added or found; the message says what to do."""


class UndeclaredGroup(OperatorProblem):
    """A group that the catalog does not declare."""


class DuplicateOperator(OperatorProblem):
    """An operator of that name exists already."""


class UnknownOperator(OperatorProblem):
    """No operator of that name."""


def token_hash(token: str) -> str:
    """The hash the ledger keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_operator(ledger: Engine, name: str, groups: Sequence[str], *, declared_groups: Collection[str]) -> str:
    """Add an operator of `groups` and return their new API token: the only time it is ever returned.

    Raises `UndeclaredGroup` for a group not in `declared_groups` and `DuplicateOperator` for a name taken.
    """
    name = name.strip()
    if not name or any(character.isspace() for character in name):
        raise OperatorProblem(f"An operator name is one word without spaces, got {name!r}.")
    declared = ", ".join(sorted(declared_groups)) or "none"
    if not groups:
        raise UndeclaredGroup(f"Operator {name!r} needs at least one group (declared groups: {declared}).")
    undeclared = sorted(set(groups) - set(declared_groups))
    if undeclared:
        raise UndeclaredGroup(
            f"Group(s) {', '.join(undeclared)} are not declared in the catalog (declared groups: {declared})."
        )
    token = secrets.token_urlsafe(32)
    row = OperatorRow(
        name=name,
        groups=list(dict.fromkeys(groups)),
        token_hash=token_hash(token),
        created_at=datetime.now(UTC),
    )
    try:
        with session_scope(ledger) as session:
            if session.get(OperatorRow, name) is not None:
                raise DuplicateOperator(f"An operator named {name!r} exists already; choose another name.")
            session.add(row)
    except IntegrityError:
        # Another process added the same name between our check and our insert.
        raise DuplicateOperator(f"An operator named {name!r} exists already; choose another name.") from None
    return token


def list_operators(ledger: Engine) -> list[Operator]:
    """Every operator, by name."""
    with Session(ledger) as session:
        rows = session.exec(select(OperatorRow).order_by(OperatorRow.name)).all()
        return [_as_operator(row) for row in rows]


def operator_named(ledger: Engine, name: str) -> Operator:
    """The operator called `name`; `UnknownOperator` naming the known operators otherwise."""
    with Session(ledger) as session:
        row = session.get(OperatorRow, name)
        if row is not None:
            return _as_operator(row)
        known = ", ".join(session.exec(select(OperatorRow.name).order_by(OperatorRow.name)).all()) or "none"
    raise UnknownOperator(
        f"No operator named {name!r} (known operators: {known}). Add one with `handoff operators add`."
    )


def operator_for_token(ledger: Engine, token: str) -> Operator | None:
    """The operator whose API token this is, or None."""
    if not token:
        return None
    with Session(ledger) as session:
        row = session.exec(select(OperatorRow).where(OperatorRow.token_hash == token_hash(token))).first()
        return None if row is None else _as_operator(row)


def _as_operator(row: OperatorRow) -> Operator:
    created_at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return Operator(name=row.name, groups=tuple(row.groups), created_at=created_at)

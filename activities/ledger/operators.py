"""Operators in the ledger: everyone with an API token, their role, the groups an operator decides for, and the
hash of the token.

A token is created here, handed back once, and stored only as its SHA-256 hash, so a copy of the ledger lets no one
act as an operator. The API (a bearer token) and the CLI (`handoff login`, HANDOFF_TOKEN) resolve a token here, and
the API checks its role; a run takes a decision's groups from here, never from the request. Groups must be declared
by the app: the caller passes the declared names, because this layer knows no app (activities depend on the
schemas alone).
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
from handoff.schemas.operators import Operator, Role


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


def add_operator(
    ledger: Engine,
    name: str,
    groups: Sequence[str],
    *,
    declared_groups: Collection[str],
    role: Role = Role.OPERATOR,
) -> str:
    """Add `name` with `role` (an operator of `groups`) and return their new API token: the only time it is returned.

    An operator needs at least one group, the other roles none. Raises `UndeclaredGroup` for a group not in
    `declared_groups` (or an operator without one) and `DuplicateOperator` for a name taken.
    """
    name = name.strip()
    if not name or any(character.isspace() for character in name):
        raise OperatorProblem(f"An operator name is one word without spaces, got {name!r}.")
    declared = ", ".join(sorted(declared_groups)) or "none"
    if role == Role.OPERATOR and not groups:
        raise UndeclaredGroup(
            f"Operator {name!r} needs at least one group to decide cases for (declared groups: {declared}); "
            "only the other roles (administrator, viewer, source) may have none."
        )
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
        role=Role(role).value,
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
    """Everyone with a token, by name."""
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
    return Operator(name=row.name, groups=tuple(row.groups), created_at=created_at, role=Role(row.role))

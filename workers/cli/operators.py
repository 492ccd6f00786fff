"""`handoff operators add|list`: everyone with an API token, their role, an operator's groups, and the tokens.

A token is printed once, when the operator is added; the ledger keeps only its hash, so a lost token is replaced,
never recovered. The role says what the token may do over the API (`schemas.operators.Role`); an operator decides
the cases of their groups, which the app must declare (`Handoffs(groups=...)`); the other roles need no group.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from handoff.activities.ledger.operators import OperatorProblem, add_operator, list_operators, operator_named
from handoff.schemas.operators import Operator, OperatorAdded, Role
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.settings import load_settings
from handoff.workers.worker import opened_ledger

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages keep their lines; the terminal wraps them

operators_app = typer.Typer(
    name="operators",
    help="Operators who decide exception cases, and the other API token holders (administrators, viewers, sources).",
    no_args_is_help=True,
)
app.add_typer(operators_app)


@operators_app.command("add")
def add(
    name: Annotated[
        str, typer.Argument(help="The operator's name, one word: how decisions and the audit trail name them.")
    ],
    groups: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            "-g",
            help="A group your app declares, whose cases an operator decides. Repeatable; operators need one.",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="administrator (operators, settings; reads), operator (decides; reads), viewer (reads) "
            "or source (sends events).",
        ),
    ] = Role.OPERATOR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the operator and token as JSON.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Add an operator (or another role) and print their API token, once: only its hash is stored."""
    declared_groups = load_user_app(app_spec).catalog.group_names
    settings = load_settings()
    quiet_logging(settings)
    try:
        with opened_ledger(settings) as ledger:
            token = add_operator(ledger, name, groups or [], declared_groups=declared_groups, role=role)
            operator = operator_named(ledger, name.strip())
    except OperatorProblem as problem:
        errors.print(f"{problem} Nothing was added.")
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(OperatorAdded(operator=operator, token=token).model_dump_json())
        return
    of_groups = f" of {', '.join(operator.groups)}" if operator.groups else ""
    console.print(f"{operator.name} added as {operator.role.article}{of_groups}.")
    console.print("API token (shown this once; only its hash is stored, so keep it now):")
    console.print(token, soft_wrap=True, highlight=False)


@operators_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the operators, their roles and groups (tokens are never shown again)."""
    settings = load_settings()
    quiet_logging(settings)
    with opened_ledger(settings) as ledger:
        found = list_operators(ledger)
    if as_json:
        console.print_json(TypeAdapter(list[Operator]).dump_json(found).decode())
        return
    table = Table(title=f"{len(found)} operator(s)", title_justify="left")
    for column in ("operator", "role", "groups", "added"):
        table.add_column(column)
    now = datetime.now(UTC)
    for operator in found:
        days = (now - operator.created_at).days
        added = f"{operator.created_at:%Y-%m-%d} ({days}d ago)"
        table.add_row(operator.name, operator.role.value, ", ".join(operator.groups) or "-", added)
    console.print(table)

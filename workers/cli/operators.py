"""`handoff operators add|list`: the people who decide cases, their groups, and their API tokens.

A token is printed once, when the operator is added; the ledger keeps only its hash, so a lost token is replaced,
never recovered. Groups must be declared by the app (`Handoffs(groups=...)`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from handoff.activities.ledger.operators import OperatorProblem, add_operator, list_operators, operator_named
from handoff.schemas.operators import Operator, OperatorAdded
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.settings import load_settings
from handoff.workers.worker import open_ledger

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages keep their lines; the terminal wraps them

operators_app = typer.Typer(
    name="operators", help="Operators who decide exception cases, and their API tokens.", no_args_is_help=True
)
app.add_typer(operators_app)


@operators_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The operator's name, one word: what `decide --as` takes.")],
    groups: Annotated[
        list[str],
        typer.Option("--group", "-g", help="A group your app declares. Repeatable.", show_default=False),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the operator and token as JSON.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Add an operator and print their API token, once: only its hash is stored."""
    declared_groups = load_user_app(app_spec).catalog.group_names
    settings = load_settings()
    quiet_logging(settings)
    ledger = open_ledger(settings)
    try:
        token = add_operator(ledger, name, groups, declared_groups=declared_groups)
        operator = operator_named(ledger, name.strip())
    except OperatorProblem as problem:
        errors.print(f"{problem} Nothing was added.")
        raise typer.Exit(2) from None
    finally:
        ledger.dispose()
    if as_json:
        console.print_json(OperatorAdded(operator=operator, token=token).model_dump_json())
        return
    console.print(f"Operator {operator.name} added to {', '.join(operator.groups)}.")
    console.print("API token (shown this once; only its hash is stored, so keep it now):")
    console.print(token, soft_wrap=True, highlight=False)


@operators_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the operators and their groups (tokens are never shown again)."""
    settings = load_settings()
    quiet_logging(settings)
    ledger = open_ledger(settings)
    try:
        found = list_operators(ledger)
    finally:
        ledger.dispose()
    if as_json:
        console.print_json(TypeAdapter(list[Operator]).dump_json(found).decode())
        return
    table = Table(title=f"{len(found)} operator(s)", title_justify="left")
    for column in ("operator", "groups", "added"):
        table.add_column(column)
    now = datetime.now(UTC)
    for operator in found:
        days = (now - operator.created_at).days
        table.add_row(operator.name, ", ".join(operator.groups), f"{operator.created_at:%Y-%m-%d} ({days}d ago)")
    console.print(table)

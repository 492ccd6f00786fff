"""`handoff check`: the readiness gate on the command line, run until every handoff says READY.

It prints each handoff with its verdict and, for a handoff that is not ready, every finding: the question left open
or the contradiction, and what to write. `--json` prints the same verdicts for machines (CI, the editor). The exit
status is 0 only when every handoff is ready, so a pipeline can refuse to deploy a catalog that is not.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from handoff.schemas.findings import CatalogReadiness, ContractReadiness
from handoff.workers.cli.app import AppOption, app, load_user_app


@app.command()
def check(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the verdicts as JSON: one entry per handoff, with its findings.")
    ] = False,
    app_spec: AppOption = None,
) -> None:
    """Check every contract of your app and say which handoffs are READY (exit 1 if any is not).

    The same gate the worker runs at start, on the same app: look-ups, systems and transforms included.
    """
    readiness = load_user_app(app_spec).readiness()
    if as_json:
        typer.echo(json.dumps(readiness_as_json(readiness), indent=2))
    else:
        render(readiness, Console())
    raise typer.Exit(0 if readiness.ready else 1)


def readiness_as_json(readiness: CatalogReadiness) -> list[dict[str, Any]]:
    """One entry per handoff: name, version, content_hash, ready, and its findings."""
    return [
        {
            "name": contract.contract,
            "version": contract.version,
            "content_hash": contract.content_hash,
            "ready": contract.ready,
            "findings": [finding.model_dump(mode="json") for finding in contract.findings],
        }
        for contract in readiness.contracts
    ]


def render(readiness: CatalogReadiness, console: Console) -> None:
    """Each handoff with its verdict and findings, then a one-line summary."""
    for contract in readiness.contracts:
        console.print(_tree(contract))
    ready = sum(contract.ready for contract in readiness.contracts)
    total = len(readiness.contracts)
    if readiness.ready:
        console.print(Text(f"{ready} of {total} handoffs READY.", style="bold green"))
    else:
        console.print(
            Text(
                f"{total - ready} of {total} handoffs NOT READY: answer the findings above, then run "
                "`handoff check` again.",
                style="bold red",
            )
        )


def _tree(contract: ContractReadiness) -> Tree:
    heading = Text.assemble(
        (contract.contract, "bold"),
        f" v{contract.version} ",
        (contract.content_hash, "dim"),
        "  ",
        ("READY", "bold green") if contract.ready else ("NOT READY", "bold red"),
    )
    if not contract.ready:
        count = len(contract.findings)
        heading.append(f" ({count} finding{'s' if count != 1 else ''})")
    tree = Tree(heading)
    for finding in contract.findings:
        branch = tree.add(Text.assemble((finding.kind.value, "yellow"), "  ", (finding.subject, "cyan")))
        # The message names its contract for readers of the JSON; under the handoff's own heading that is noise.
        branch.add(Text(finding.message.removeprefix(f"{finding.contract}: ")))
    return tree

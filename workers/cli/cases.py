"""`handoff cases`, `case`, `decide`, `runs`, `status`, `report`: an operator's work from the command line.

Listings read the ledger; `status` asks the run itself first; `decide` sends a Temporal Update, attested with the
decision key, as the operator whose token the CLI holds (`HANDOFF_TOKEN`, else `handoff login`), found in the ledger
as the API finds a bearer token. A case another operator of the group holds (`handoff claim`) is theirs to decide:
`decide` refuses it before sending anything, as the API does. Every listing takes `--json` and prints the same models
the HTTP API answers with. Exit codes: 0 done, 1 refused or not found, 2 bad input (or no operator token).

`case` and `status` show a run's data as the API would to the operator whose token the CLI holds: personal fields
masked unless that operator's group owns the case (`handoff.workers.masking`), which fields are personal read from
the app's contracts (`--app`, else HANDOFF_APP; without either, every value is masked for anyone else). The CLI reads
the ledger with its database URL, so this is a courtesy to the screen it prints on, not a boundary: the API is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, TypeAdapter
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from temporalio.client import Client

from handoff.activities.ledger.case_history import CaseActionRefused, check_claim_for_decision
from handoff.activities.ledger.operators import operator_for_token
from handoff.activities.ledger.purge import purged_on
from handoff.activities.ledger.reads import case_detail, open_cases, recent_runs
from handoff.activities.ledger.report import build_report
from handoff.schemas.api import CaseDetail, CaseSummary, RunDetail, RunSummary
from handoff.schemas.case_history import CaseEvent
from handoff.schemas.cases import DecisionRequest, DecisionResult
from handoff.schemas.contract import DecisionKind, HandoffContract
from handoff.schemas.operators import Operator
from handoff.schemas.report import HandoffFigures, Report, VersionReport
from handoff.schemas.runs import Stage
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.login import TOKEN_VARIABLE, no_token_message, operator_token
from handoff.workers.client import connect
from handoff.workers.decisions import DecisionRefused, MissingDecisionKey, decide, decision_key, workflow_of_case
from handoff.workers.logs import configure_logging
from handoff.workers.masking import PersonalData, sees_personal_data, shown_case, shown_run
from handoff.workers.run_detail import run_detail
from handoff.workers.settings import Settings, load_settings, parse_span
from handoff.workers.worker import open_ledger, opened_ledger

T = TypeVar("T")

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages keep their lines; the terminal wraps them

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (the HTTP API's models) instead of a table.")]


class BadAssignment(ValueError):
    """A `--set` that is not `entity.field=value`."""


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """`entity.field=value` pairs as a patch; a value is JSON when it parses as JSON (4, true, null), else text."""
    patch: dict[str, Any] = {}
    for assignment in assignments:
        path, equals, text = assignment.partition("=")
        path = path.strip()
        if not equals or "." not in path or path.startswith(".") or path.endswith("."):
            raise BadAssignment(f"--set {assignment!r}: write entity.field=value, e.g. reservation.party_size=4.")
        try:
            patch[path] = json.loads(text)
        except json.JSONDecodeError:
            patch[path] = text
    return patch


@app.command()
def cases(
    group: Annotated[str | None, typer.Option("--group", help="Only cases this group owns now.")] = None,
    handoff: Annotated[str | None, typer.Option("--handoff", help="Only cases of this handoff.")] = None,
    as_json: AsJson = False,
) -> None:
    """List the open exception cases, the most urgent first."""
    settings = cli_settings()
    found = _with_ledger(settings, lambda ledger: open_cases(ledger, now=_now(), group=group, handoff=handoff))
    if as_json:
        print_json(TypeAdapter(list[CaseSummary]), found)
        return
    table = Table(title=f"{len(found)} open case(s)", title_justify="left")
    table.add_column("case", no_wrap=True, min_width=14)
    table.add_column("handoff")
    table.add_column("owner")
    table.add_column("held by")
    table.add_column("age", no_wrap=True)
    table.add_column("SLA left", no_wrap=True)
    table.add_column("violations", min_width=16)
    for case in found:
        table.add_row(
            case.id,
            case.handoff,
            case.owner_group,
            case.claimed_by or "",
            _duration(case.age_seconds),
            _time_left(case.sla_left_seconds),
            _short_violations(case.violations),
        )
    console.print(table)


@app.command()
def case(
    case_id: Annotated[str, typer.Argument(help="The case id, e.g. C-1a2b3c4d5e6f.")],
    as_json: AsJson = False,
    app_spec: AppOption = None,
) -> None:
    """Show everything about one case: violations, payload, who holds it, its history (claims, comments,
    escalations, refused attempts, the decision). Personal fields are masked unless your operator token's group owns
    the case (--app says which fields are personal)."""
    settings = cli_settings()

    def read(ledger: Engine) -> tuple[CaseDetail | None, datetime | None, Operator | None]:
        detail = case_detail(ledger, case_id, now=_now())
        if detail is None:
            return None, None, None
        return detail, purged_on(ledger, detail.workflow_id), _caller(ledger)

    detail, purged_at, caller = _with_ledger(settings, read)
    if detail is None:
        errors.print(f"No case {case_id!r} in the ledger. `handoff cases` lists the open ones.")
        raise typer.Exit(1)
    shown = detail
    if not sees_personal_data(caller, {detail.owner_group}):
        shown = shown_case(detail, caller=caller, personal=_personal_data(settings, app_spec))
    if as_json:
        print_json(TypeAdapter(CaseDetail), shown)
        return
    _show_case(shown, purged_at=purged_at, masked=shown != detail)


@app.command(name="decide")
def decide_command(
    case_id: Annotated[str, typer.Argument(help="The case to decide.")],
    decision: Annotated[DecisionKind, typer.Argument(help="approve, reject, correct or retry.")],
    reason: Annotated[str, typer.Option("--reason", help="Why: kept in the audit trail.")],
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="For correct: entity.field=value (JSON if it parses, else text). Repeatable."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Decide a case as the operator whose token you hold (HANDOFF_TOKEN, else `handoff login`). A refusal prints
    the workflow's reason and exits 1; the case stays as it was, and its history keeps the refusal."""
    settings = cli_settings()
    try:
        patch = parse_assignments(assignments or [])
    except BadAssignment as bad:
        errors.print(str(bad))
        raise typer.Exit(2) from None
    if not reason.strip():
        errors.print("--reason must say why: it is kept in the audit trail.")
        raise typer.Exit(2)
    ledger = open_ledger(settings)
    try:
        operator = token_operator(ledger)
        check_claim_for_decision(ledger, case_id, operator)
        workflow_id = workflow_of_case(ledger, case_id)
        request = DecisionRequest(
            case_id=case_id,
            decision=decision,
            operator=operator.name,
            operator_groups=operator.groups,
            reason=reason.strip(),
            patch=patch,
        )
        result = asyncio.run(_decide(settings, workflow_id, request, decision_key(settings)))
    except MissingDecisionKey as missing:
        errors.print(str(missing))
        raise typer.Exit(2) from None
    except DecisionRefused as refused:
        errors.print(f"Refused ({refused.refusal.kind.value}): {refused.refusal.message}")
        errors.print("The case is as it was; its history keeps the refused attempt.")
        raise typer.Exit(1) from None
    except CaseActionRefused as held:
        errors.print(f"Refused ({held.kind.value}): {held.message}")
        raise typer.Exit(1) from None
    finally:
        ledger.dispose()
    if as_json:
        print_json(TypeAdapter(DecisionResult), result)
        return
    assert result.case.decision is not None
    console.print(
        f"Case {result.case.id} decided: {result.case.decision.decision.value} by {result.case.decision.operator} "
        f"({result.case.decision.group}). The run moves to {result.next_stage}."
    )


@app.command()
def runs(
    handoff: Annotated[str | None, typer.Option("--handoff", help="Only runs of this handoff.")] = None,
    stage: Annotated[Stage | None, typer.Option("--stage", help="Only runs in this stage.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 20,
    as_json: AsJson = False,
) -> None:
    """List recent runs, newest first, with their stage."""
    settings = cli_settings()
    found = _with_ledger(settings, lambda ledger: recent_runs(ledger, handoff=handoff, stage=stage, limit=limit))
    if as_json:
        print_json(TypeAdapter(list[RunSummary]), found)
        return
    now = _now()
    table = Table(title=f"{len(found)} run(s)", title_justify="left")
    for column in ("run", "stage", "received", "took", "cases", "note"):
        table.add_column(column, no_wrap=column != "note")
    for run in found:
        took = (run.finished_at or now) - run.received_at
        note = run.failure or ("approved as is" if run.override else "")
        table.add_row(
            run.workflow_id,
            run.stage.value,
            f"{_duration((now - run.received_at).total_seconds())} ago",
            _duration(took.total_seconds()) + ("" if run.finished_at else " so far"),
            str(run.cases),
            note,
        )
    console.print(table)


@app.command()
def status(
    workflow_id: Annotated[str, typer.Argument(help="The run's workflow id, e.g. reservation-to-pos/R-1001.")],
    as_json: AsJson = False,
    app_spec: AppOption = None,
) -> None:
    """Show one run: live from Temporal, or from the ledger once Temporal no longer has it. Personal fields are
    masked unless your operator token's group owns one of its cases (--app says which fields are personal)."""
    settings = cli_settings()

    async def read(ledger: Engine) -> tuple[RunDetail | None, datetime | None, Operator | None]:
        detail = await run_detail(await temporal_client(settings), ledger, workflow_id)
        return detail, purged_on(ledger, workflow_id), _caller(ledger)

    found, purged_at, caller = _with_ledger(settings, lambda ledger: asyncio.run(read(ledger)))
    if found is None:
        errors.print(f"No run {workflow_id!r}: neither Temporal nor the ledger knows it. `handoff runs` lists runs.")
        raise typer.Exit(1)
    owners = {exception_case.owner_group for exception_case in found.status.cases}
    if owners and sees_personal_data(caller, owners):
        personal = PersonalData(None)  # never asked: the caller sees the run whole
    else:  # a run without a case needs its contract to say who may see it, and every other caller what is personal
        personal = _personal_data(settings, app_spec)
    detail = shown_run(found, caller=caller, personal=personal, purged_at=purged_at)
    if as_json:
        print_json(TypeAdapter(RunDetail), detail)
        return
    run = detail.status
    console.print(f"[bold]{run.workflow_id}[/bold]  {run.stage.value}  (from {detail.source})")
    console.print(f"handoff {run.handoff} v{run.contract_version} ({run.contract_hash})")
    if purged_at is not None:
        console.print(f"payloads purged on {purged_at:%Y-%m-%d %H:%M:%S} UTC")
    if run.override:
        console.print("delivered by an approve, despite its violations")
    if run.failure:
        console.print(f"[red]failure: {run.failure}")
    for exception_case in run.cases:
        decided = exception_case.decision
        outcome = (
            f"{decided.decision.value} by {decided.operator}" if decided else f"open, {exception_case.owner_group}"
        )
        rules = _short_violations([v.rule for v in exception_case.violations])
        console.print(f"case {exception_case.id}: {outcome}; {rules}")
    for delivery in run.deliveries:
        console.print(f"delivered to {delivery.system} as {delivery.record_key}: {', '.join(sorted(delivery.fields))}")


@app.command()
def report(
    by_version: Annotated[
        bool, typer.Option("--by-version", help="Also each handoff's figures per contract version, oldest first.")
    ] = False,
    as_json: AsJson = False,
    app_spec: AppOption = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            dir_okay=False,
            help="Write the report with its charts (the inbox's report page) to FILE, one standalone HTML file.",
        ),
    ] = None,
    since: Annotated[
        str, typer.Option("--since", metavar="SPAN", help="With --html: the charts' window, e.g. 30d, 12h.")
    ] = "30d",
) -> None:
    """Each handoff's figures from the ledger, against the gain its contract declares."""
    user_app = load_user_app(app_spec)
    if html is not None:
        _write_html_report(html, since, user_app.catalog.contracts)
        return
    # Every version, so that each version line is held to the gain its own contract declared.
    contracts = user_app.every_version() if by_version else user_app.catalog.contracts
    settings = cli_settings()
    figures = _with_ledger(settings, lambda ledger: build_report(ledger, contracts, by_version=by_version))
    if as_json:
        print_json(TypeAdapter(Report), figures)
        return
    lines: list[HandoffFigures] = [line for total in figures.handoffs for line in (total, *total.versions)]
    table = Table(title="Report", title_justify="left")
    for column in ("handoff", "runs", "delivered", "rejected", "failed", "open", "exceptions", "cycle p50/p95"):
        table.add_column(column, no_wrap=True)
    for column in ("touches/run", "escalations", "gain"):
        table.add_column(column)
    for line in lines:
        table.add_row(
            f"  v{line.contract_version}" if isinstance(line, VersionReport) else line.handoff,
            str(line.runs),
            str(line.delivered),
            str(line.rejected),
            str(line.failed),
            str(line.open_cases),
            _figure(line.exception_rate_pct, "%"),
            f"{_seconds(line.cycle_time.p50)} / {_seconds(line.cycle_time.p95)}",
            _figure(line.manual_touches_per_run),
            str(line.escalations),
            _gain(line),
        )
    console.print(table)
    for line in lines:
        name = f"{line.handoff} v{line.contract_version}" if isinstance(line, VersionReport) else line.handoff
        for latency in line.decision_latency:
            console.print(
                f"{name}: {latency.group} decides in {_seconds(latency.seconds.p50)} (p50), "
                f"{_seconds(latency.seconds.p95)} (p95) over {latency.seconds.count} decision(s)"
            )
    for total in figures.handoffs:
        for drift in total.drift:
            console.print(
                f"{total.handoff}: drift in {drift.system}: {drift.cases} case(s), {drift.open_cases} open",
                markup=False,
            )


def _write_html_report(path: Path, since: str, contracts: Sequence[HandoffContract]) -> None:
    # The page's renderer brings Jinja2 and the inbox along: imported only when a page is asked for.
    from handoff.activities.ledger.report_series import build_series
    from handoff.workers.inbox.report_page import standalone_report

    now = datetime.now(UTC)
    try:
        start = now - parse_span(since)
    except (ValueError, OverflowError) as error:
        message = str(error) if isinstance(error, ValueError) else f"{since!r} reaches back further than a date can"
        raise typer.BadParameter(message, param_hint="--since") from None
    series = _with_ledger(cli_settings(), lambda ledger: build_series(ledger, contracts, since=start, now=now))
    try:
        path.write_text(standalone_report(series, since), encoding="utf-8")
    except OSError as error:
        errors.print(f"Cannot write {path}: {error.strerror or error}.", markup=False)
        raise typer.Exit(1) from None
    console.print(f"Wrote the report since {since} ({len(series.handoffs)} handoff(s)) to {path}", markup=False)


# -- plumbing ---------------------------------------------------------------------------------------------------------


def cli_settings() -> Settings:
    """The settings, with logging set up for a command (`quiet_logging`)."""
    settings = load_settings()
    quiet_logging(settings)
    return settings


def quiet_logging(settings: Settings) -> None:
    """Logs to stderr, so stdout stays clean for `--json`; the ledger's schema check keeps its INFO lines to itself,
    since an operator listing cases has no use for them."""
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def _with_ledger(settings: Settings, read: Callable[[Engine], T]) -> T:
    with opened_ledger(settings) as ledger:
        return read(ledger)


def token_operator(ledger: Engine) -> Operator:
    """The operator the CLI acts as: whose token it holds (HANDOFF_TOKEN, else `handoff login`), found in the ledger
    as the API finds a bearer token. Exits 2, saying what to do, without a token or with one the ledger does not
    know."""
    found = operator_token()
    if found is None:
        errors.print(no_token_message())
        raise typer.Exit(2)
    token, source = found
    operator = operator_for_token(ledger, token)
    if operator is None:
        fix = f"set {TOKEN_VARIABLE} to your token" if source == TOKEN_VARIABLE else "log in again (`handoff login`)"
        errors.print(f"The operator token from {source} is no operator's in this ledger: {fix}.")
        raise typer.Exit(2)
    return operator


def _caller(ledger: Engine) -> Operator | None:
    """Whoever the CLI's operator token belongs to; None without a token, or (with a warning) for an unknown one."""
    found = operator_token()
    if found is None:
        return None
    token, source = found
    operator = operator_for_token(ledger, token)
    if operator is None:
        errors.print(f"The operator token from {source} is no operator's in this ledger: personal fields are masked.")
    return operator


def _personal_data(settings: Settings, app_spec: str | None) -> PersonalData:
    """Which fields are personal, from every contract version of the app `--app` (else HANDOFF_APP) names; without
    an app, nothing is known, so every value counts as personal."""
    if not (app_spec or settings.app):
        errors.print("No app (--app or HANDOFF_APP) to say which fields are personal: every value is masked.")
        return PersonalData(None)
    return PersonalData(load_user_app(app_spec).every_version())


async def temporal_client(settings: Settings) -> Client:
    """A client for the settings' Temporal; exits 1 saying where it looked when it cannot connect."""
    try:
        return await connect(settings)
    except RuntimeError as error:  # the SDK's connection failure
        errors.print(f"Cannot reach Temporal at {settings.temporal_address}: {error}")
        raise typer.Exit(1) from None


async def _decide(settings: Settings, workflow_id: str, request: DecisionRequest, key: bytes) -> DecisionResult:
    return await decide(await temporal_client(settings), workflow_id, request, key=key)


def _now() -> datetime:
    return datetime.now(UTC)


def print_json(adapter: TypeAdapter[Any], value: BaseModel | list[Any]) -> None:
    """Print `value` as the HTTP API's JSON, for `--json`."""
    console.print_json(adapter.dump_json(value).decode())


def _show_case(detail: CaseDetail, *, purged_at: datetime | None = None, masked: bool = False) -> None:
    console.print(f"[bold]Case {detail.id}[/bold]  {detail.status.value}  ({detail.handoff}, run {detail.workflow_id})")
    stage = detail.run_stage.value if detail.run_stage else "unknown"
    console.print(f"owner {detail.owner_group} · opened {_duration(detail.age_seconds)} ago · run stage {stage}")
    if detail.decision is None:
        console.print(f"SLA {_time_left(detail.sla_left_seconds)} · allowed: {', '.join(detail.allowed)}")
    violations = Table(title="Violations", title_justify="left")
    for column in ("rule", "field", "value", "reason"):
        violations.add_column(column)
    for violation in detail.violations:
        violations.add_row(violation.rule, violation.field, json.dumps(violation.value), violation.reason)
    console.print(violations)
    if purged_at is not None:
        console.print(f"[bold]Payload when the case was opened:[/bold] purged on {purged_at:%Y-%m-%d %H:%M:%S} UTC")
    else:
        console.print("[bold]Payload when the case was opened")
        console.print_json(data=detail.payload)
    if masked:
        console.print(f"Personal fields are masked: only operators of {detail.owner_group} see them.")
    if detail.decision is not None:
        decided = detail.decision
        by = f"{decided.operator} ({decided.group})" if decided.group else decided.operator
        patch = f" setting {json.dumps(decided.patch)}" if decided.patch else ""
        console.print(f"decision: {decided.decision.value}{patch} by {by} at {decided.decided_at:%Y-%m-%d %H:%M:%S}")
        console.print(f"  reason: {decided.reason}")
    elif detail.claimed_by is not None:
        since = f" since {detail.claimed_at:%Y-%m-%d %H:%M:%S}" if detail.claimed_at else ""
        console.print(f"held by {detail.claimed_by}{since}: only they decide it (`handoff release` lets it go)")
    else:
        console.print("held by nobody: `handoff claim` takes it")
    history = Table(title="History", title_justify="left")
    for column in ("at (UTC)", "what", "who", "details"):
        history.add_column(column, no_wrap=column != "details")
    for event in detail.history:
        history.add_row(f"{event.at:%Y-%m-%d %H:%M:%S}", event.kind.value, event.operator or "", _event_details(event))
    console.print(history)


def _event_details(event: CaseEvent) -> str:
    """A history line's particulars: to whom, from which group to which, the decision and its words."""
    parts = [
        f"to {event.to_operator}" if event.to_operator else "",
        f"{event.from_group} -> {event.to_group}"
        if event.from_group
        else (f"for {event.to_group}" if event.to_group else ""),
        event.decision.value if event.decision else "",
        event.text or "",
    ]
    return ": ".join(part for part in parts if part)


def _duration(seconds: float) -> str:
    """A duration a person reads at a glance: 45s, 12m 05s, 3h 04m, 2d 03h."""
    whole = int(abs(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def _time_left(seconds: float) -> str:
    return _duration(seconds) if seconds >= 0 else f"overdue {_duration(seconds)}"


def _short_violations(rules: Sequence[str], shown: int = 1) -> str:
    listed = "; ".join(rules[:shown])
    return listed + (f" (+{len(rules) - shown} more)" if len(rules) > shown else "")


def _figure(value: float | None, unit: str = "") -> str:
    """A measured figure to two decimals at most: 60, 33.33, 0.2."""
    if value is None:
        return "no data"
    return f"{value:.2f}".rstrip("0").rstrip(".") + unit


def _seconds(value: float | None) -> str:
    return "-" if value is None else _duration(value)


def _gain(line: HandoffFigures) -> str:
    if line.gain is None:
        return "not in the catalog"
    gain = line.gain
    return (
        f"{gain.measure.value} {_figure(gain.actual)} vs target {_figure(gain.target)} {gain.unit}: "
        f"{gain.verdict.value}"
    )

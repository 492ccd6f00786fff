"""Replay recorded runs against the current code, before its workers are deployed: `handoff replay-check`.

A run in flight is finished by whichever worker picks it up next, which replays its history on that worker's code.
If the new code would take another path through an old history (a step moved, an activity renamed, a wait changed),
the run breaks in production. This check replays the recent histories of each handoff, fetched from Temporal or read
from a folder of saved JSON, with the app's plugin (the workflow, the converter and every contract version) exactly
as a worker has it, and says which runs would break. Histories from Temporal hold encrypted payloads, which the
plugin decrypts with the decision key's payload key (`handoff.workers.codec`); saved ones may be in clear.

    check = await replay(app, server_histories(client, handoffs_to_check(app, None), limit=50), source="...")
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from sqlalchemy import create_engine
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig
from temporalio.worker import Replayer, WorkflowReplayResult

from handoff.schemas.replay import HandoffReplay, ReplayCheck, ReplayFailure
from handoff.workers.app import Handoffs
from handoff.workflows.search_attributes import HANDOFF_NAME

DEFAULT_LIMIT = 50
"""Histories fetched per handoff unless told otherwise."""

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ReplayCheckError(ValueError):
    """The check was asked for something it cannot do: an unknown handoff, a folder without histories, a bad age."""


# -- what to replay ---------------------------------------------------------------------------------------------------


def handoffs_to_check(app: Handoffs, only: str | None) -> list[str]:
    """The app's handoffs, in catalog order, or just `only`; `ReplayCheckError` naming the known ones otherwise."""
    names = [contract.name for contract in app.catalog.contracts]
    if only is None:
        return names
    if only not in names:
        raise ReplayCheckError(f"the app has no handoff {only!r} (its handoffs: {', '.join(names) or 'none'})")
    return [only]


def parse_age(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `90s` or `2w` as a duration; `ReplayCheckError` saying how to write one otherwise."""
    match = _AGE.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ReplayCheckError(
            f"{text!r} is not an age: write a positive number and a unit, e.g. 7d, 12h, 30m, 90s, 2w"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def histories_query(handoff: str, *, closed_since: datetime | None = None, task_queue: str | None = None) -> str:
    """The visibility query for a handoff's runs: every open one (the next deploy replays them all), and the closed
    ones, or only those closed since `closed_since`; on one task queue when given."""
    clauses = [f'{HANDOFF_NAME.name} = "{handoff}"']
    if closed_since is not None:
        clauses.append(f'(ExecutionStatus = "Running" OR CloseTime >= "{closed_since.astimezone(UTC).isoformat()}")')
    if task_queue is not None:
        clauses.append(f'TaskQueue = "{task_queue}"')
    return " AND ".join(clauses)


async def server_histories(
    client: Client,
    handoffs: Sequence[str],
    *,
    limit: int = DEFAULT_LIMIT,
    since: timedelta | None = None,
    task_queue: str | None = None,
) -> AsyncIterator[WorkflowHistory]:
    """Up to `limit` histories per handoff from Temporal, in the server's listing order (open runs first, then the
    most recently closed). Each history is fetched when the replayer asks for the next one."""
    closed_since = datetime.now(UTC) - since if since is not None else None
    for handoff in handoffs:
        query = histories_query(handoff, closed_since=closed_since, task_queue=task_queue)
        async for execution in client.list_workflows(query, limit=limit):
            yield await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()


def folder_histories(directory: Path, handoffs: Iterable[str] | None = None) -> list[WorkflowHistory]:
    """Every `*.json` history in `directory` (not its subfolders), named by its file; only `handoffs`' when given.

    Raises:
        ReplayCheckError: the folder does not exist, holds no JSON file, or a file is not a workflow history.
    """
    if not directory.is_dir():
        raise ReplayCheckError(f"{directory}: no such folder")
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise ReplayCheckError(
            f"{directory}: no .json file in it. Save histories with `temporal workflow show "
            "--output json` or `(await handle.fetch_history()).to_json()`."
        )
    wanted = None if handoffs is None else set(handoffs)
    histories = [_read_history(path) for path in paths]
    return [history for history in histories if wanted is None or handoff_of(history) in wanted]


def _read_history(path: Path) -> WorkflowHistory:
    try:
        history = WorkflowHistory.from_json(path.stem, path.read_text())
    except (ValueError, TypeError, KeyError, json.JSONDecodeError) as error:
        raise ReplayCheckError(f"{path} is not a workflow history (JSON with an 'events' list): {error}") from None
    if not history.events or not history.events[0].HasField("workflow_execution_started_event_attributes"):
        raise ReplayCheckError(f"{path} is not a workflow history: it does not begin with the run's start event")
    return history


def handoff_of(history: WorkflowHistory) -> str:
    """The handoff a history is a run of: its workflow type, from the start event."""
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


# -- replaying --------------------------------------------------------------------------------------------------------


async def replay(
    app: Handoffs,
    histories: AsyncIterator[WorkflowHistory],
    *,
    source: str,
    handoffs: Sequence[str] = (),
    decision_key: bytes | None = None,
) -> ReplayCheck:
    """Replay every history with the app's plugin, as a worker of the current code would; never raises for a failed
    replay, but counts it under its handoff.

    Args:
        histories: the histories, e.g. `server_histories(...)`, or `as_async(folder_histories(...))`.
        source: where they came from, for the report.
        handoffs: handoffs listed in the report even when no history of theirs was replayed.
        decision_key: the key whose payload key decrypts the histories (default: the settings', taken only if a
            history holds an encrypted payload: saved histories written before the codec need none).
    """
    results = {name: HandoffReplay(handoff=name) for name in handoffs}
    # A replay runs no activity, so the plugin's ledger is never connected: an in-memory engine it does not own.
    ledger = create_engine("sqlite://")
    try:
        plugin = app.plugin(ledger=ledger, decision_key=decision_key)
        replayer = Replayer(workflows=[], plugins=[plugin], runtime=replay_runtime())
        async with replayer.workflow_replay_iterator(histories) as replayed:
            async for result in replayed:
                name = handoff_of(result.history)
                tally = results.setdefault(name, HandoffReplay(handoff=name))
                tally.replayed += 1
                if result.replay_failure is not None:
                    tally.failures.append(_failure(result))
    finally:
        ledger.dispose()
    return ReplayCheck(source=source, handoffs=list(results.values()))


@cache
def replay_runtime() -> Runtime:
    """The process's runtime for replays, whose core logs go to Python logging (stderr) like every other log.

    The default runtime's core writes its warnings to stdout, and a failed replay logs one: it would land in the
    middle of `handoff replay-check --json`.
    """
    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    return Runtime(
        telemetry=TelemetryConfig(logging=LoggingConfig(filter=LoggingConfig.default.filter, forwarding=forwarding))
    )


async def as_async(histories: Iterable[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    """Histories already read, as the async iterator the replayer takes."""
    for history in histories:
        yield history


def _failure(result: WorkflowReplayResult) -> ReplayFailure:
    error = result.replay_failure
    assert error is not None
    message = str(error).strip() or type(error).__name__
    return ReplayFailure(
        workflow_id=result.history.workflow_id,
        run_id=result.history.run_id,
        error_type=type(error).__name__,
        error=headline(message),
        detail=message,
    )


_FAILED_TASK = re.compile(r'Failure \{ failure: Some\(Failure \{ message: "((?:[^"\\]|\\.)*)"')


def headline(message: str) -> str:
    """The first line of a replay's error; for a failed workflow task, the first line of its own message, which the
    SDK wraps in one long line of its core's debug output."""
    failed_task = _FAILED_TASK.search(message)
    if failed_task is not None:
        first = failed_task.group(1).split("\\n")[0]  # the core's debug output escapes newlines and quotes
        return first.replace('\\"', '"').replace("\\\\", "\\")
    return message.splitlines()[0]

"""Events per run, Handoff against bare and best, on the happy path and on the one-case path, by event type.

    .venv/bin/python bench/history.py

Goals (bench/goals.py): no more events than the samples-style bare workflow needs for the same work (bare already
pays one ledger activity per stage change, as Handoff does), and history bytes at most 1.1 x bare's. Search-attribute
upserts are counted like every other event; best's local activities are `MarkerRecorded` events.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import PayloadCodec

from handoff.workers.codec import decoded_history

from figures import print_goals, print_table, verdict, write_results
from goals import history_goals
from harness import FLAVOURS, Running, arguments, bench_server, main, reservation, running

LEDGER_ACTIVITIES = {"record_stage_change", "record_stage"}
MARKER = EventType.EVENT_TYPE_MARKER_RECORDED
PATHS = ("happy", "case")


async def one_run(run: Running, *, case: bool) -> str:
    """Run one handoff to the end, approving its case (if it opens one) once the run rests on it; its workflow id."""
    workflow_id = await run.start(reservation(case=case))
    if case:
        case_id = await _parked(run, workflow_id)
        await run.decide(workflow_id, case_id)
    await run.result(workflow_id)
    return workflow_id


async def _parked(run: Running, workflow_id: str, timeout: float = 30) -> str:
    """The case id, once the run waits on it: its SLA timer is in the history. (Deciding as soon as the ledger shows
    the case can race the workflow task that starts the wait; the decision then needs no timer, and one task less.)"""
    handle = run.client.get_workflow_handle(workflow_id)
    for _ in range(int(timeout / 0.05)):
        cases = [case_id for case_id, owner in run.open_cases() if owner == workflow_id]
        history = await handle.fetch_history()
        if cases and any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events):
            return cases[0]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{workflow_id} was not waiting on a case within {timeout}s")


async def breakdown(client: Client, workflow_id: str, codec: PayloadCodec | None = None) -> dict[str, Any]:
    """Event counts by type, activities by type, and the history's size in bytes: as stored, and with its payloads
    decoded by the flavour's `codec` (Handoff's encryption; bare and best have none), to show what encrypting costs."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    decoded = history if codec is None else await decoded_history(history, codec)
    events = Counter(_short(EventType.Name(e.event_type)) for e in history.events)
    activities = Counter(
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    )
    local = Counter(_local_activity(e) for e in history.events if e.event_type == MARKER)
    local.pop(None, None)
    return {
        "workflow_id": workflow_id,
        "events": len(history.events),
        "bytes": sum(e.ByteSize() for e in history.events),
        "bytes_decoded": sum(e.ByteSize() for e in decoded.events),
        "by_type": dict(sorted(events.items())),
        "activities": dict(sorted(activities.items())),
        "ledger_activities": sum(n for name, n in activities.items() if name in LEDGER_ACTIVITIES),
        "local_activities": dict(sorted(local.items())),
        "ledger_local_activities": sum(n for name, n in local.items() if name in LEDGER_ACTIVITIES),
    }


def _local_activity(event: Any) -> str | None:
    """The activity type a local-activity marker records (the SDK core's JSON in its `data` detail), else None."""
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != "core_local_activity" or "data" not in attributes.details:
        return None
    try:
        return str(json.loads(attributes.details["data"].payloads[0].data)["activity_type"])
    except (IndexError, KeyError, ValueError):
        return "?"


def _short(name: str) -> str:
    """EVENT_TYPE_ACTIVITY_TASK_SCHEDULED -> ActivityTaskScheduled."""
    return "".join(part.title() for part in name.removeprefix("EVENT_TYPE_").split("_"))


async def run(args: Any) -> bool:
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-history-") as directory:
        async with bench_server() as env:
            for flavour in FLAVOURS:
                async with running(flavour, env.client, Path(directory) / flavour.name) as kit:
                    for path in PATHS:
                        workflow_id = await one_run(kit, case=path == "case")
                        codec = kit.client.data_converter.payload_codec
                        figures[f"{flavour.name}/{path}"] = await breakdown(env.client, workflow_id, codec)

    columns = [f"{flavour.name}/{path}" for path in PATHS for flavour in FLAVOURS]
    types = sorted({t for key in columns for t in figures[key]["by_type"]})
    rows: list[list[Any]] = [[t, *(figures[key]["by_type"].get(t, 0) for key in columns)] for t in types]
    rows.append(["= events", *(figures[key]["events"] for key in columns)])
    rows.append(["activities", *(sum(figures[key]["activities"].values()) for key in columns)])
    rows.append(["  of which ledger", *(figures[key]["ledger_activities"] for key in columns)])
    rows.append(["local activities", *(sum(figures[key]["local_activities"].values()) for key in columns)])
    rows.append(["  of which ledger", *(figures[key]["ledger_local_activities"] for key in columns)])
    rows.append(["history bytes", *(figures[key]["bytes"] for key in columns)])
    rows.append(["  payloads decoded", *(figures[key]["bytes_decoded"] for key in columns)])
    print_table(["event type", *columns], rows, title="Events per run, by type")

    for path in PATHS:
        handoff = figures[f"handoff/{path}"]
        for baseline in ("bare", "best"):
            other = figures[f"{baseline}/{path}"]
            types = sorted(set(handoff["by_type"]) | set(other["by_type"]))
            differences = {t: handoff["by_type"].get(t, 0) - other["by_type"].get(t, 0) for t in types}
            shown = ", ".join(f"{t} {d:+d}" for t, d in differences.items() if d) or "none"
            print(f"{path}: Handoff has {handoff['events'] - other['events']:+d} events against {baseline}: {shown}")
    goals = history_goals({"runs": figures})
    print_goals(goals)
    write_results("history", {"parameters": {}, "runs": figures}, goals)
    shown = ", ".join(
        f"{flavour.name} {figures[f'{flavour.name}/happy']['events']} / {figures[f'{flavour.name}/case']['events']}"
        for flavour in FLAVOURS
    )
    print(f"history: events happy / case: {shown} (goals events <= bare, bytes <= 1.1 x bare: {verdict(goals)})")
    return True


if __name__ == "__main__":
    options = arguments(__doc__ or "", default_n=1)
    main(lambda: run(options))

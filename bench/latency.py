"""Decision latency: from sending a decision to the workflow's next activity being scheduled, Handoff against bare
(and best).

    .venv/bin/python bench/latency.py [--n 500] [--flavours handoff,bare,best]

`--n` runs per flavour are parked on an open case; then the cases are decided one at a time, alternating the
flavours, each decision on an otherwise idle system (the next one is sent once the previous run has finished).

    latency = event_time(first ActivityTaskScheduled after WorkflowExecutionUpdateAccepted) - t_send

where t_send is the client's wall clock just before `execute_update("decide", ...)` and the event time is the
server's clock when it recorded the worker's answer (same machine, same clock). The next activity is the ledger write
of the decision in Handoff and bare; in best that write is a local activity (a marker, in the same workflow task),
so its next scheduled activity is the delivery. Also reported: update accepted (the same workflow task, so nearly the same) and the
update's round trip (until it returns: the ledger holds the decision). Goals (bench/goals.py): Handoff's p50 at most
bare's; the round trip's p50 at most 15 ms on a cached run (every parked run here is in the cache when `--n` is
within the worker's cache, 1,000 by default), and at most 60 ms on a run evicted from the cache: measured again on
workers without a cache (`max_cached_workflows=0`), a quarter as many decisions (at least 20), where every decision
replays its run first.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from figures import Clock, percentile, print_goals, print_table, verdict, write_results
from floor import measure_floor
from goals import latency_goals
from harness import Running, arguments, bench_server, bounded, ledger_count, main, reservation, running, selected

ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
TASK_STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
TASK_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
MEASURES = {
    "scheduled_ms": "send -> next activity scheduled",
    "accepted_ms": "send -> update accepted",
    "round_trip_ms": "update round trip (ledger holds it)",
    "to_worker_ms": "  send -> workflow task started",
    "worker_ms": "  workflow task started -> completed",
    "after_ms": "  task completed -> activity scheduled",
}


async def park(run: Running, n: int) -> list[tuple[str, str]]:
    """Start `n` runs that open a case; (workflow id, case id) of each once all cases are open."""
    await bounded((run.start(reservation(case=True)) for _ in range(n)), limit=50)
    while len(cases := run.open_cases()) < n:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)  # the last runs' next workflow task starts their wait (and its SLA timer)
    return [(workflow_id, case_id) for case_id, workflow_id in cases]


async def decide_timed(run: Running, workflow_id: str, case_id: str) -> dict[str, Any]:
    """Send one decision; the send time, the round trip, after the run has finished."""
    sent = time.time_ns()
    await run.decide(workflow_id, case_id)
    returned = time.time_ns()
    await run.result(workflow_id)
    return {"workflow_id": workflow_id, "sent_ns": sent, "round_trip_ms": (returned - sent) / 1e6}


async def from_history(client: Client, sample: dict[str, Any]) -> dict[str, Any]:
    """Add the history's times: accepted and scheduled, and the split of the latter into the time until the
    workflow task that took the update started, that task's time on the worker, and the server's time after it."""
    history = await client.get_workflow_handle(sample["workflow_id"]).fetch_history()
    events = list(history.events)
    accepted = next(i for i, e in enumerate(events) if e.event_type == ACCEPTED)
    scheduled = next(e for e in events[accepted:] if e.event_type == SCHEDULED)
    completed = next(e for e in reversed(events[:accepted]) if e.event_type == TASK_COMPLETED)
    started = next(e for e in reversed(events[:accepted]) if e.event_type == TASK_STARTED)
    sent = sample["sent_ns"]

    def ms(later: int, earlier: int) -> float:
        return (later - earlier) / 1e6

    return sample | {
        "accepted_ms": ms(events[accepted].event_time.ToNanoseconds(), sent),
        "scheduled_ms": ms(scheduled.event_time.ToNanoseconds(), sent),
        "to_worker_ms": ms(started.event_time.ToNanoseconds(), sent),
        "worker_ms": ms(completed.event_time.ToNanoseconds(), started.event_time.ToNanoseconds()),
        "after_ms": ms(scheduled.event_time.ToNanoseconds(), completed.event_time.ToNanoseconds()),
        "next_activity": scheduled.activity_task_scheduled_event_attributes.activity_type.name,
    }


async def measure(flavours: Any, n: int, **overrides: Any) -> dict[str, dict[str, Any]]:
    """Park `n` runs per flavour, decide them one at a time (alternating flavours), and read the samples' times from
    their histories: p50 / p90 / p99 of every measure, per flavour. `overrides`: the workers' settings."""
    samples: dict[str, list[dict[str, Any]]] = {flavour.name: [] for flavour in flavours}
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as directory:
        async with bench_server() as env, AsyncExitStack() as stack:
            runs = [
                await stack.enter_async_context(
                    running(flavour, env.client, Path(directory) / flavour.name, **overrides)
                )
                for flavour in flavours
            ]
            clock = Clock()
            parked = dict(
                zip(
                    (r.flavour.name for r in runs),
                    await asyncio.gather(*(park(r, n) for r in runs)),
                    strict=True,
                )
            )
            print(f"  parked {n:,} runs per flavour in {clock.seconds:.1f}s", flush=True)
            for index in range(n):
                for r in runs if index % 2 == 0 else reversed(runs):
                    workflow_id, case_id = parked[r.flavour.name][index]
                    samples[r.flavour.name].append(await decide_timed(r, workflow_id, case_id))
            for r in runs:
                delivered = ledger_count(r.ledger, "runs WHERE stage = 'delivered'")
                if delivered != n:
                    raise RuntimeError(f"{r.flavour.name}: {delivered} of {n} runs delivered")
            for name in samples:
                samples[name] = await bounded((from_history(env.client, s) for s in samples[name]), limit=20)
    return {
        name: {measure: {q: percentile([s[measure] for s in mine], q) for q in (50, 90, 99)} for measure in MEASURES}
        | {"next_activity": sorted({s["next_activity"] for s in mine})}
        for name, mine in samples.items()
    }


async def run(args: Any) -> bool:
    flavours = selected(args.flavours)
    figures = await measure(flavours, args.n)
    # The same decisions on workers without a cache: every decision's workflow task replays its run first, as on a
    # worker that evicted it (or a new one after a restart).
    evicted_n = max(20, args.n // 4)
    print(f"  and {evicted_n:,} decisions per flavour on workers without a workflow cache", flush=True)
    evicted = await measure(flavours, evicted_n, max_cached_workflows=0)
    print(f"  and the floor: {evicted_n:,} updates of each kind on a workflow that does nothing", flush=True)
    async with bench_server() as env:
        floor = await measure_floor(env.client, evicted_n)
    print_table(
        ["measure", "flavour", "p50 ms", "p90 ms", "p99 ms"],
        [
            [label, name, *(figures[name][measure][q] for q in (50, 90, 99))]
            for measure, label in MEASURES.items()
            for name in figures
        ],
        title=f"Decision latency over {args.n:,} decisions per flavour (the indented rows split the first)",
    )
    print_table(
        ["measure", "flavour", "p50 ms", "p90 ms", "p99 ms"],
        [
            [label, name, *(evicted[name][measure][q] for q in (50, 90, 99))]
            for measure, label in MEASURES.items()
            for name in evicted
        ],
        title=f"The same over {evicted_n:,} decisions per flavour, each on a run evicted from the cache",
    )
    print_table(
        ["update", "p50 ms", "p90 ms", "p99 ms"],
        [[kind, *(floor[kind][q] for q in (50, 90, 99))] for kind in floor],
        title=f"The floor: an update's round trip on a cached run of a workflow that does nothing else ({evicted_n:,} "
        "each; bench/floor.py)",
    )
    goals = latency_goals({"figures": figures, "evicted": evicted, "floor": floor})
    print_goals(goals)
    write_results(
        "latency",
        {"parameters": {"n": args.n, "evicted_n": evicted_n}, "figures": figures, "evicted": evicted, "floor": floor},
        goals,
    )
    shown = ", ".join(
        f"{name} {figures[name]['scheduled_ms'][50]:.1f} ms (round trip {figures[name]['round_trip_ms'][50]:.1f}, "
        f"evicted {evicted[name]['round_trip_ms'][50]:.1f})"
        for name in figures
    )
    print(
        f"latency: decision -> next activity p50 {shown} (goals <= bare, round trip <= 15 ms cached, <= 60 ms "
        f"evicted: {verdict(goals)})"
    )
    return True


if __name__ == "__main__":
    options = arguments(
        __doc__ or "", default_n=500, flavours=(str, "handoff,bare,best", "which flavours to run, alternating")
    )
    main(lambda: run(options))

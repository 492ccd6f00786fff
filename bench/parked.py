"""Parked runs: the worker's resident memory with `--n` runs waiting on open cases, and the time to resume them all
after a worker restart. `handoff worker` and the bare worker, each in its own process, one after the other.

    .venv/bin/python bench/parked.py [--n 10000] [--flavours handoff,bare] [--max-cached 10000]

For each flavour: start the worker process (settings in HANDOFF_* variables, ledger and systems in a temp dir, SLAs
scaled so that none passes), start `--n` runs that each open a case, wait until the ledger holds every case, and
read the worker's VmRSS from /proc/<pid>/status. Then restart it: SIGTERM (graceful), a new worker process, approve
every case through the update (50 at a time), and time from the first decision until the ledger has every run
delivered. The new worker's cache is empty, so every run is replayed from its history first.
Goal: Handoff's worker under 500 MB resident.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from activities.ledger.database import make_engine

from figures import Clock, Goal, peak_rss_mb, print_goals, print_table, rss_mb, verdict, write_results
from harness import (
    HANDOFF,
    Flavour,
    WorkerProcess,
    arguments,
    bench_server,
    bench_settings,
    bounded,
    decide,
    ledger_count,
    ledger_open_cases,
    main,
    reservation,
    selected,
    server_address,
    worker_environment,
)

GOAL_MB = 500
CONCURRENCY = 50
ROWS = {
    "start_seconds": "worker start (until it polls), s",
    "idle_rss_mb": "resident when idle, MB",
    "park_seconds": "parking all runs, s",
    "parked_rss_mb": "resident with all parked, MB",
    "parked_peak_rss_mb": "  peak while parking, MB",
    "stop_seconds": "graceful stop, s",
    "restart_seconds": "new worker polling after, s",
    "resume_seconds": "first decision -> all delivered, s",
    "resumed_rss_mb": "resident after resuming, MB",
    "resumed_peak_rss_mb": "  peak while resuming, MB",
}


async def wait_until(what: str, done: Callable[[], bool], worker: WorkerProcess, timeout: float) -> float:
    """Check `done()` every half second until it holds; the seconds that took."""
    clock = Clock()
    while not await asyncio.to_thread(done):
        worker.check_alive()
        if clock.seconds > timeout:
            raise TimeoutError(f"{what}: not done within {timeout:.0f}s")
        await asyncio.sleep(0.5)
    return clock.seconds


async def measure(flavour: Flavour, client: Client, directory: Path, n: int, max_cached: int) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(directory, flavour, max_cached_workflows=max_cached)
    env = worker_environment(settings, server_address(client))
    log = directory / "worker.log"
    timeout = max(300.0, n / 2)  # slower than 2 runs a second means something is wrong

    worker = WorkerProcess(flavour.command, env, log)
    figures: dict[str, Any] = {"start_seconds": await worker.start(client, settings.task_queue)}
    figures["idle_rss_mb"] = rss_mb(worker.pid)
    ledger = make_engine(settings.ledger_url)  # the worker created and migrated it
    try:
        clock = Clock()
        await bounded((flavour.start(client, settings, reservation(case=True)) for _ in range(n)), CONCURRENCY)
        await wait_until("parking", lambda: ledger_count(ledger, "cases WHERE status = 'open'") >= n, worker, timeout)
        figures["park_seconds"] = clock.seconds
        await asyncio.sleep(2)  # let the last workflow tasks complete
        figures["parked_rss_mb"] = rss_mb(worker.pid)
        figures["parked_peak_rss_mb"] = peak_rss_mb(worker.pid)
        print(
            f"  {flavour.name}: {n:,} parked in {figures['park_seconds']:.1f}s, "
            f"worker {figures['parked_rss_mb']:.0f} MB resident",
            flush=True,
        )

        figures["stop_seconds"] = await worker.stop()
        worker = WorkerProcess(flavour.command, env, log)
        figures["restart_seconds"] = await worker.start(client, settings.task_queue)
        cases = await asyncio.to_thread(ledger_open_cases, ledger)
        clock = Clock()
        await bounded((decide(client, workflow_id, case_id) for case_id, workflow_id in cases), CONCURRENCY)
        await wait_until(
            "resuming", lambda: ledger_count(ledger, "runs WHERE stage = 'delivered'") >= n, worker, timeout
        )
        figures["resume_seconds"] = clock.seconds
        figures["resumed_rss_mb"] = rss_mb(worker.pid)
        figures["resumed_peak_rss_mb"] = peak_rss_mb(worker.pid)
        print(
            f"  {flavour.name}: restarted; {n:,} decided and delivered in {figures['resume_seconds']:.1f}s", flush=True
        )
    finally:
        ledger.dispose()
        await worker.stop()
    return figures


async def run(args: Any) -> bool:
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-parked-") as directory:
        async with bench_server() as env:
            for flavour in selected(args.flavours):
                place = Path(directory) / flavour.name
                figures[flavour.name] = await measure(flavour, env.client, place, args.n, args.max_cached)

    print_table(
        ["figure", *figures],
        [[label, *(figures[name][key] for name in figures)] for key, label in ROWS.items()],
        title=f"{args.n:,} runs parked on an open case (workflow cache {args.max_cached:,})",
    )
    goals = []
    if HANDOFF.name in figures:
        handoff = figures[HANDOFF.name]
        peak = max(handoff["parked_peak_rss_mb"], handoff["resumed_peak_rss_mb"])
        bare = f", bare {figures['bare']['parked_rss_mb']:.0f} MB" if "bare" in figures else ""
        goals.append(
            Goal(
                figure=f"worker resident, {args.n:,} parked",
                measured=f"{handoff['parked_rss_mb']:.0f} MB (peak {peak:.0f}){bare}",
                goal=f"< {GOAL_MB} MB",
                met=peak < GOAL_MB,
            )
        )
        print_goals(goals)
    parameters = {"n": args.n, "flavours": list(figures), "max_cached_workflows": args.max_cached}
    write_results("parked", {"parameters": parameters, "figures": figures}, goals)
    summary = "; ".join(
        f"{name} {f['parked_rss_mb']:.0f} MB parked, resumed in {f['resume_seconds']:.1f}s"
        for name, f in figures.items()
    )
    goal = f" (goal < {GOAL_MB} MB: {verdict(goals)})" if goals else ""
    print(f"parked: {args.n:,} runs: {summary}{goal}")
    return True


if __name__ == "__main__":
    options = arguments(
        __doc__ or "",
        default_n=10_000,
        flavours=(str, "handoff,bare", "which workers to measure"),
        max_cached=(int, 10_000, "the workers' max_cached_workflows (Handoff's default: 10,000)"),
    )
    main(lambda: run(options))

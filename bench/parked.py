"""Parked runs: the worker's resident memory with `--n` runs waiting on open cases, and the time to resume them all
after a worker restart. `handoff worker` and the bare worker, each in its own process, one after the other.

    .venv/bin/python bench/parked.py [--n 10000] [--flavours handoff,bare] [--max-cached N]

For each flavour: start the worker process (settings in HANDOFF_* variables, ledger and systems in a temp dir, SLAs
scaled so that none passes), start `--n` runs that each open a case, wait until the ledger holds every case, and
read the worker's VmRSS from /proc/<pid>/status. Then restart it: SIGTERM (graceful), a new worker process, approve
every case through the update (50 at a time), and time from the first decision until the ledger has every run
delivered. The new worker's cache is empty, so every run is replayed from its history first.
Goals (bench/goals.py), judged at 10,000 parked only: Handoff's resident memory at most bare's at the same cache
size, parking and resuming at least 1.2 x bare's rate; at any size: the worker polling within 1.5 s of its start.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from handoff.activities.ledger.database import make_engine
from handoff.workers.decisions import decision_key
from handoff.workers.settings import Settings

from figures import (
    Clock,
    cpu_seconds,
    peak_rss_mb,
    print_goals,
    print_table,
    rss_mb,
    server_pid,
    verdict,
    write_results,
)
from goals import parked_goals
from harness import (
    Flavour,
    WorkerProcess,
    add_the_operator,
    arguments,
    bench_server,
    bench_settings,
    bounded,
    client_for,
    decide,
    ledger_count,
    ledger_open_cases,
    main,
    not_ready_refusals,
    reservation,
    selected,
    server_address,
    worker_environment,
)

GOAL_RUNS = 10_000
OPEN = "cases WHERE status = 'open'"
CONCURRENCY = 50
ROWS = {
    "start_seconds": "worker start (until it polls), s",
    "idle_rss_mb": "resident when idle, MB",
    "park_seconds": "parking all runs, s",
    "warm_parked_rss_mb": "resident with 10% parked, MB",
    "parked_rss_mb": "resident with all parked, MB",
    "parked_peak_rss_mb": "  peak while parking, MB",
    "stop_seconds": "graceful stop, s",
    "restart_seconds": "new worker polling after, s",
    "resume_seconds": "first decision -> all delivered, s",
    "resume_worker_cpu_ms": "  worker CPU per resumed run, ms",
    "resume_server_cpu_ms": "  dev-server CPU per resumed run, ms",
    "resume_bench_cpu_ms": "  bench (client) CPU per resumed run, ms",
    "resumed_rss_mb": "resident after resuming, MB",
    "resumed_peak_rss_mb": "  peak while resuming, MB",
}


def warm_runs(n: int) -> int:
    return max(1, n // 10)


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
    add_the_operator(ledger)

    async def park(count: int, total: int) -> None:
        """Start `count` more runs that open a case; wait until the ledger holds `total` open cases."""
        await bounded((flavour.start(client, settings, reservation(case=True)) for _ in range(count)), CONCURRENCY)
        await wait_until("parking", lambda: ledger_count(ledger, OPEN) >= total, worker, timeout)

    try:
        warm = warm_runs(n)  # parked first: the growth per run after them leaves out one-off allocations
        clock = Clock()
        await park(warm, warm)
        figures["park_seconds"] = clock.seconds
        await asyncio.sleep(2)  # let the last workflow tasks complete
        figures["warm_parked_rss_mb"] = rss_mb(worker.pid)
        clock = Clock()
        await park(n - warm, n)
        figures["park_seconds"] += clock.seconds
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
        server = server_pid()
        used = CpuUse(worker.pid, server)
        clock = Clock()
        key = decision_key(settings)
        deciding = client_for(flavour, client, settings)
        await bounded((decide(deciding, workflow_id, case_id, key) for case_id, workflow_id in cases), CONCURRENCY)
        await wait_until(
            "resuming", lambda: ledger_count(ledger, "runs WHERE stage = 'delivered'") >= n, worker, timeout
        )
        figures["resume_seconds"] = clock.seconds
        figures["resume_worker_cpu_ms"], figures["resume_server_cpu_ms"], figures["resume_bench_cpu_ms"] = (
            seconds * 1000 / n for seconds in used.since()
        )
        figures["updates_refused_not_ready"] = sum(not_ready_refusals.values())
        figures["resumed_rss_mb"] = rss_mb(worker.pid)
        figures["resumed_peak_rss_mb"] = peak_rss_mb(worker.pid)
        print(
            f"  {flavour.name}: restarted; {n:,} decided and delivered in {figures['resume_seconds']:.1f}s"
            f" ({figures['updates_refused_not_ready']} updates refused while a workflow task was retried, sent again)",
            flush=True,
        )
        not_ready_refusals.clear()
    finally:
        ledger.dispose()
        await worker.stop()
    return figures


class CpuUse:
    """CPU time the worker, the dev server and this process (the client) use from now on: where a resume's time goes
    when the machine's cores are the limit."""

    def __init__(self, worker: int, server: int | None) -> None:
        self._pids = (worker, server)
        self._start = self._now()

    def _now(self) -> tuple[float, float, float]:
        worker, server = self._pids
        return cpu_seconds(worker), cpu_seconds(server) if server is not None else 0.0, cpu_seconds()

    def since(self) -> tuple[float, float, float]:
        """Seconds of CPU each used since this was made: worker, server, this process."""
        worker, server, bench = self._now()
        return worker - self._start[0], server - self._start[1], bench - self._start[2]


def projected_mb(figures: dict[str, dict[str, Any]], name: str, n: int, max_cached: int) -> float:
    """Resident memory projected to 10,000 parked, for a run below that size: the growth per cached run (from 10%
    parked to all parked, which leaves out the one-off allocations of the first runs) times the runs still to be
    cached: a parked run stays resident only while it is in the worker's cache (`max_cached_workflows`); beyond it,
    runs are evicted and replayed when they resume. Shown beside the goals, not judged: see bench/goals.py."""
    f = figures[name]
    cached_at_goal = min(GOAL_RUNS, max_cached)
    if n >= cached_at_goal:  # the cache is as full as it will be with 10,000 parked
        return float(f["parked_rss_mb"])
    per_run = (f["parked_rss_mb"] - f["warm_parked_rss_mb"]) / (n - warm_runs(n))
    return float(f["parked_rss_mb"] + per_run * (cached_at_goal - n))


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
    parameters = {"n": args.n, "flavours": list(figures), "max_cached_workflows": args.max_cached}
    data: dict[str, Any] = {"parameters": parameters, "figures": figures}
    if args.n < GOAL_RUNS:
        data["projected_rss_mb_at_10000"] = {
            name: projected_mb(figures, name, args.n, args.max_cached) for name in figures
        }
        shown = ", ".join(f"{name} ~{mb:,.0f} MB" for name, mb in data["projected_rss_mb_at_10000"].items())
        print(f"\nprojected to {GOAL_RUNS:,} parked (cache {args.max_cached:,}), not a measurement: {shown}")
    goals = parked_goals(data)
    print_goals(goals)
    write_results("parked", data, goals)
    summary = "; ".join(
        f"{name} {f['parked_rss_mb']:.0f} MB parked, resumed in {f['resume_seconds']:.1f}s"
        for name, f in figures.items()
    )
    print(f"parked: {args.n:,} runs: {summary} (goals measured here: {verdict(goals)})")
    return True


if __name__ == "__main__":
    options = arguments(
        __doc__ or "",
        default_n=10_000,
        flavours=(str, "handoff,bare", "which workers to measure (handoff, bare, best)"),
        max_cached=(int, Settings().max_cached_workflows, "both workers' max_cached_workflows (default: Handoff's)"),
    )
    main(lambda: run(options))

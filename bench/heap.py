"""Where a parked run's memory goes, Handoff against bare: memray's native heap profile of each worker process.

    .venv/bin/pip install memray        # a profiling tool, not a dependency of Handoff
    .venv/bin/python bench/heap.py [--n 400] [--flavours handoff,bare]

`parked.py` reads the worker's resident memory; this says whose allocations it is. Each flavour's worker runs under
`memray run --native`, which sees every malloc, the Rust core's included. It parks `--n / 4` runs, then, in another
worker, `--n` runs (the cache holds them all, as it holds the newest 1,000 in parked.py), and stops. The heap at its
high-water mark is sorted by who allocated it: Python objects, protobuf messages (the SDK's, in upb arenas), the
temporalio core (Rust), the rest. The difference between the two sizes, divided by the runs between them, is what one
parked run holds; one-off allocations (imports, the worker's own) cancel out.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.client import Client

from handoff.activities.ledger.database import make_engine

from figures import print_table, write_results
from harness import (
    Flavour,
    WorkerProcess,
    add_the_operator,
    arguments,
    bench_server,
    bench_settings,
    bounded,
    ledger_count,
    main,
    reservation,
    selected,
    server_address,
    worker_environment,
)

OPEN = "cases WHERE status = 'open'"
CONCURRENCY = 20
CATEGORIES = ("Python objects", "protobuf messages (upb)", "temporalio core (Rust)", "other")


def category(record: Any) -> str:
    """Who made an allocation: the allocating function, or the core anywhere in its native stack."""
    frames = record.native_stack_trace(max_stacks=16)
    top = frames[0][0] if frames else ""
    if top.startswith(("_PyObject", "PyObject")) or (frames and "obmalloc" in frames[0][1]):
        return CATEGORIES[0]
    if "upb" in top:
        return CATEGORIES[1]
    if any(marker in name for name, _, _ in frames for marker in ("sdk_core", "sdk_bridge", "temporalio_")):
        return CATEGORIES[2]
    return CATEGORIES[3]


def peak_by_category(capture: Path) -> dict[str, float]:
    """MB at the heap's high-water mark, by category."""
    import memray  # imported here: the other benchmarks run without it

    sizes: Counter[str] = Counter()
    for record in memray.FileReader(capture).get_high_watermark_allocation_records(merge_threads=True):
        sizes[category(record)] += record.size
    return {name: sizes[name] / 1e6 for name in CATEGORIES}


async def park(flavour: Flavour, client: Client, directory: Path, n: int) -> dict[str, float]:
    """A worker of `flavour` under memray with `n` runs parked on open cases; its heap by category."""
    directory.mkdir(parents=True)
    settings = bench_settings(directory, flavour, max_cached_workflows=max(n, 1000))
    capture = directory / "heap.bin"
    # memray runs a script: the `handoff` entry point, or the baseline's worker script (after the interpreter).
    script = flavour.command if flavour.command[0] != sys.executable else flavour.command[1:]
    profiled = (sys.executable, "-m", "memray", "run", "--native", "--quiet", "--output", str(capture), *script)
    worker = WorkerProcess(profiled, worker_environment(settings, server_address(client)), directory / "worker.log")
    await worker.start(client, settings.task_queue, timeout=180)
    ledger = make_engine(settings.ledger_url)
    add_the_operator(ledger)
    await bounded((flavour.start(client, settings, reservation(case=True)) for _ in range(n)), CONCURRENCY)
    for _ in range(1200):
        if ledger_count(ledger, OPEN) >= n:
            break
        worker.check_alive()
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # the last workflow tasks complete
    await worker.stop()
    ledger.dispose()
    return await asyncio.to_thread(peak_by_category, capture)


async def run() -> bool:
    args = arguments(
        __doc__ or "", 400, flavours=(str, "handoff,bare", "which workers to profile (handoff, bare, best)")
    )
    small = max(args.n // 4, 1)
    figures: dict[str, Any] = {}
    async with bench_server() as env:
        with tempfile.TemporaryDirectory(prefix="bench-heap-") as directory:
            for flavour in selected(args.flavours):
                few = await park(flavour, env.client, Path(directory) / f"{flavour.name}-{small}", small)
                many = await park(flavour, env.client, Path(directory) / f"{flavour.name}-{args.n}", args.n)
                per_run = {name: (many[name] - few[name]) * 1000 / (args.n - small) for name in CATEGORIES}
                figures[flavour.name] = {"peak_mb": {str(small): few, str(args.n): many}, "per_run_kb": per_run}
                print(f"  {flavour.name}: {sum(per_run.values()):.1f} kB per parked run", flush=True)
    names = list(figures)
    rows = [[name, *(f"{figures[flavour]['per_run_kb'][name]:.1f}" for flavour in names)] for name in CATEGORIES]
    rows.append(["total", *(f"{sum(figures[flavour]['per_run_kb'].values()):.1f}" for flavour in names)])
    print(f"\nHeap per parked run, kB (memray --native, high-water mark, {small} and {args.n} parked)")
    print_table(["held by", *names], rows)
    write_results("heap", {"parameters": {"n": args.n, "small": small, "flavours": names}, "figures": figures}, [])
    summary = ", ".join(f"{name} {sum(figures[name]['per_run_kb'].values()):.1f} kB" for name in names)
    print(f"heap: per parked run {summary}")
    return True


if __name__ == "__main__":
    main(run)

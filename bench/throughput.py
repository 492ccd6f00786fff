"""Throughput: handoffs per second, Handoff against the two hand-written baselines doing the same work, on one server.

    .venv/bin/python bench/throughput.py [--n 1000] [--rounds 4] [--flavours handoff,bare,best]

`--n` handoffs per flavour, 20% of them opening a case (a party of 14) that a scripted front-of-house operator
approves through the `decide` update. The flavours take turns in rounds (A/B, then B/A, ...) so that a drift of the
server over the run hits all alike (A/B/C, then C/B/A); each round has its own worker, task queue, ledger and
systems. Goals (bench/goals.py): Handoff at least 1.2 x samples-style bare and 0.95 x best hand-written, and no more
dev-server CPU per run than bare.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from figures import Clock, cpu_seconds, print_goals, print_table, server_pid, verdict, write_results
from goals import throughput_goals
from harness import (
    BARE,
    BEST,
    HANDOFF,
    Flavour,
    Operator,
    arguments,
    bench_server,
    ledger_count,
    main,
    mixed_payloads,
    running,
    selected,
)

CASE_SHARE = 0.2
START_CONCURRENCY = 50


@dataclass
class Round:
    index: int
    flavour: str
    runs: int
    cases: int
    seconds: float
    bench_cpu: float
    server_cpu: float

    @property
    def per_second(self) -> float:
        return self.runs / self.seconds

    @property
    def bench_ms(self) -> float:
        return self.bench_cpu / self.runs * 1000

    @property
    def server_ms(self) -> float:
        return self.server_cpu / self.runs * 1000

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"per_second": self.per_second}


async def one_round(flavour: Flavour, client: Client, directory: Path, index: int, n: int) -> Round:
    """Start `n` runs at once (at most 50 starts in flight), approve their cases, wait for every result."""
    payloads = mixed_payloads(n, CASE_SHARE)
    server = server_pid()
    async with running(flavour, client, directory / f"{flavour.name}-{index}") as run:
        operator = Operator(run)
        deciding = asyncio.create_task(operator.work())
        starts = asyncio.Semaphore(START_CONCURRENCY)

        async def one(payload: dict[str, Any]) -> None:
            async with starts:
                workflow_id = await run.start(payload)
            await run.result(workflow_id)

        bench_before, server_before, clock = cpu_seconds(), server_cpu(server), Clock()
        await asyncio.gather(*(one(p) for p in payloads))
        seconds = clock.seconds
        bench_used, server_used = cpu_seconds() - bench_before, server_cpu(server) - server_before
        deciding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await deciding
        if operator.failures:
            raise RuntimeError(f"{flavour.name}: {len(operator.failures)} decisions failed: {operator.failures[:3]}")
        delivered = ledger_count(run.ledger, "runs WHERE stage = 'delivered'")
        if delivered != n:
            raise RuntimeError(f"{flavour.name} round {index}: {delivered} of {n} runs delivered")
    return Round(index, flavour.name, n, operator.decided, seconds, bench_used, server_used)


def server_cpu(pid: int | None) -> float:
    return cpu_seconds(pid) if pid is not None else 0.0


async def run(args: Any) -> bool:
    flavours = selected(args.flavours)
    per_round = max(1, args.n // args.rounds)
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as directory:
        async with bench_server() as env:
            for flavour in flavours:  # warm-up: imports, sandbox, server caches; not counted
                await one_round(flavour, env.client, Path(directory), -1, min(50, per_round))
            for index in range(args.rounds):
                for flavour in flavours if index % 2 == 0 else tuple(reversed(flavours)):
                    done = await one_round(flavour, env.client, Path(directory), index, per_round)
                    print(f"  round {index} {flavour.name:8} {done.per_second:7.1f} handoffs/s", flush=True)
                    rounds.append(done)

    print_table(
        ["round", "flavour", "runs", "cases", "seconds", "handoffs/s", "CPU ms/run: bench", "server"],
        [[r.index, r.flavour, r.runs, r.cases, r.seconds, r.per_second, r.bench_ms, r.server_ms] for r in rounds],
        title="Rounds",
    )
    totals = {flavour.name: total([r for r in rounds if r.flavour == flavour.name]) for flavour in flavours}
    print_table(
        ["flavour", "runs", "cases", "seconds", "handoffs/s", "CPU ms/run: bench", "server"],
        [
            [name, t["runs"], t["cases"], t["seconds"], t["per_second"], t["bench_cpu_ms"], t["server_cpu_ms"]]
            for name, t in totals.items()
        ],
        title="Totals (bench = this process: client, worker, activities; server = the temporal dev server)",
    )
    parameters = {"n": args.n, "rounds": args.rounds, "case_share": CASE_SHARE, "flavours": list(totals)}
    data: dict[str, Any] = {"parameters": parameters, "rounds": [r.as_dict() for r in rounds], "totals": totals}
    if HANDOFF.name in totals and BARE.name in totals:
        data["ratio"] = totals[HANDOFF.name]["per_second"] / totals[BARE.name]["per_second"]
    if HANDOFF.name in totals and BEST.name in totals:
        data["ratio_best"] = totals[HANDOFF.name]["per_second"] / totals[BEST.name]["per_second"]
    goals = throughput_goals(data)
    print_goals(goals)
    write_results("throughput", data, goals)
    rates = ", ".join(f"{name} {t['per_second']:.1f}/s" for name, t in totals.items())
    print(f"throughput: {rates} (goals >= 1.2 x bare, >= 0.95 x best, server CPU <= bare: {verdict(goals)})")
    return True


def total(rounds: list[Round]) -> dict[str, Any]:
    runs, seconds = sum(r.runs for r in rounds), sum(r.seconds for r in rounds)
    return {
        "runs": runs,
        "cases": sum(r.cases for r in rounds),
        "seconds": seconds,
        "per_second": runs / seconds,
        "bench_cpu_ms": sum(r.bench_cpu for r in rounds) / runs * 1000,
        "server_cpu_ms": sum(r.server_cpu for r in rounds) / runs * 1000,
    }


if __name__ == "__main__":
    options = arguments(
        __doc__ or "",
        default_n=1000,
        rounds=(int, 4, "A/B rounds the runs are split into"),
        flavours=(str, "handoff,bare,best", "which flavours to run (one alone: to profile it)"),
    )
    main(lambda: run(options))

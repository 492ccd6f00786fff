"""Run every benchmark and print each figure beside its goal: what `make bench` runs.

    .venv/bin/python bench/run_all.py           # sizes that finish in under 5 minutes on 2 cores
    .venv/bin/python bench/run_all.py --full    # the scripts' own defaults (1,000 / 500 / 10,000: much longer)

Each script runs in its own process (its own server); its output is shown as it comes. The final table reads the
goals each script wrote to bench/results/<name>.json. Exits 1 when a script failed; a goal not met is reported,
not an error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

QUICK: list[tuple[str, list[str]]] = [
    ("history", []),
    ("latency", ["--n", "200"]),
    ("throughput", ["--n", "300", "--rounds", "3"]),
    ("parked", ["--n", "300"]),
    ("readiness", []),
]
FULL: list[tuple[str, list[str]]] = [(name, []) for name, _ in QUICK]


def run_script(name: str, args: list[str]) -> dict[str, Any]:
    """Run bench/<name>.py, echoing its output; its exit code, seconds, summary line and goals."""
    script = BENCH / f"{name}.py"
    if not script.exists():
        print(f"\n=== {name}: {script.name} is not there yet; skipped", flush=True)
        return {"name": name, "code": None, "seconds": 0.0, "summary": f"{name}: not there yet", "goals": []}
    print(f"\n=== {name} {' '.join(args)}".rstrip(), flush=True)
    started_wall, clock = time.time(), time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    last = ""
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.strip():
            last = line.strip()
    code = process.wait()
    return {
        "name": name,
        "code": code,
        "seconds": time.perf_counter() - clock,
        "summary": last,
        "goals": _goals(name, since=started_wall),
    }


def _goals(name: str, since: float) -> list[dict[str, Any]]:
    """The goals the script wrote in this run (a results file older than the run is ignored)."""
    path = RESULTS / f"{name}.json"
    if not path.exists() or path.stat().st_mtime < since:
        return []
    goals = json.loads(path.read_text()).get("goals", [])
    return goals if isinstance(goals, list) else []


def failed(outcome: dict[str, Any]) -> bool:
    """A script failed when it exited non-zero without writing its goals (readiness.py exits 1 on a goal not met)."""
    return outcome["code"] not in (0, None) and not outcome["goals"]


def rows_of(outcome: dict[str, Any]) -> list[list[str]]:
    """One row per goal: benchmark, figure, measured, goal, met."""
    if outcome["code"] is None:
        return [[outcome["name"], outcome["summary"], "", "", "skipped"]]
    if failed(outcome):
        return [[outcome["name"], outcome["summary"], "", "", f"FAILED (exit {outcome['code']})"]]
    return [
        [
            outcome["name"],
            # bench/readiness.py (another author's) writes {"goal", "met"}: its figure is in its summary line.
            goal.get("figure") or outcome["name"],
            goal.get("measured") or summary_figure(outcome["summary"]),
            goal.get("goal", ""),
            "met" if goal.get("met") else "NOT MET",
        ]
        for goal in outcome["goals"]
    ]


def summary_figure(summary: str) -> str:
    """'readiness: 1000 contracts in 0.39 s (goal ...)' -> '1000 contracts in 0.39 s'."""
    return summary.split(":", 1)[-1].split(" (", 1)[0].strip()


def print_final(outcomes: list[dict[str, Any]], seconds: float) -> None:
    rows = [row for outcome in outcomes for row in rows_of(outcome)]
    headers = ["benchmark", "figure", "measured", "goal", "met?"]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    print(f"\n{' Benchmarks: each figure beside its goal ':=^{sum(widths) + 8}}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print()
    for outcome in outcomes:
        print(f"{outcome['name']:>10}  {outcome['seconds']:6.1f}s  {outcome['summary']}")
    print(f"{'total':>10}  {seconds:6.1f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="the scripts' default sizes instead of the quick ones")
    options = parser.parse_args()
    clock = time.perf_counter()
    outcomes = [run_script(name, args) for name, args in (FULL if options.full else QUICK)]
    print_final(outcomes, time.perf_counter() - clock)
    broken = [o["name"] for o in outcomes if failed(o)]
    if broken:
        print(f"failed: {', '.join(broken)}")
    return 1 if broken else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)

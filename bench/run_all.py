"""Run every benchmark and print every goal of the performance issue beside its figure: what `make bench` runs.

    .venv/bin/python bench/run_all.py           # sizes that finish in under 5 minutes on 2 cores
    .venv/bin/python bench/run_all.py --full    # the scripts' own defaults (1,000 / 500 / 10,000: much longer)

Each script runs in its own process (its own server); its output is shown as it comes, and it writes
bench/results/<name>.json as always. The final table computes every goal (bench/goals.py) from the results files
written in this run, met, NOT MET or "not measured here" (with what would measure it: 10,000 parked runs are beyond
`make bench`'s sizes). Exits 1 when a script failed; a goal not met is reported, not an error.
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

from goals import BY_BENCHMARK, every_goal, print_every_goal

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
        return {"name": name, "code": None, "seconds": 0.0, "summary": f"{name}: not there yet", "document": None}
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
        "document": _document(name, since=started_wall),
    }


def _document(name: str, since: float) -> dict[str, Any] | None:
    """The results file the script wrote in this run (one older than the run is ignored)."""
    path = RESULTS / f"{name}.json"
    if not path.exists() or path.stat().st_mtime < since:
        return None
    document = json.loads(path.read_text())
    return document if isinstance(document, dict) else None


def failed(outcome: dict[str, Any]) -> bool:
    """A script failed when it exited non-zero without writing its results (readiness.py exits 1 on a goal not met)."""
    return outcome["code"] not in (0, None) and outcome["document"] is None


def print_final(outcomes: list[dict[str, Any]], seconds: float) -> None:
    """Every goal of the performance issue beside its figure (bench/goals.py), then each script's summary line."""
    documents: dict[str, dict[str, Any] | None] = {}
    for outcome in outcomes:
        document = outcome["document"]
        if document is not None and outcome["name"] not in BY_BENCHMARK:
            document = document | {"summary": summary_figure(outcome["summary"])}
        documents[outcome["name"]] = document
    print_every_goal(every_goal(documents))
    print()
    for outcome in outcomes:
        state = "FAILED" if failed(outcome) else "skipped" if outcome["code"] is None else ""
        print(f"{outcome['name']:>10}  {outcome['seconds']:6.1f}s  {state} {outcome['summary']}".rstrip())
    print(f"{'total':>10}  {seconds:6.1f}s")


def summary_figure(summary: str) -> str:
    """'readiness: 1000 contracts in 0.39 s (goal ...)' -> '1000 contracts in 0.39 s'."""
    return summary.split(":", 1)[-1].split(" (", 1)[0].strip()


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

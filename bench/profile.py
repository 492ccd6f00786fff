"""Where the bench process's time goes per run, Handoff against bare: py-spy on bench/throughput.py, one flavour at
a time, samples sorted into categories (workflow module import per run, workflow code, SDK, activities' SQL, ...).

    .venv/bin/pip install py-spy        # a profiling tool, not a dependency of Handoff
    .venv/bin/python bench/profile.py [--n 300]

py-spy samples every thread of the process 100 times a second without pausing it (`--nonblocking`); idle threads
(a thread pool waiting for work, the event loop in select) are left out. A thread waiting for the GIL counts as
busy, so the milliseconds are larger than CPU time; compare the two columns, not the absolute values. Raw samples
are kept in bench/results/profile-<flavour>.txt (for flamegraph.pl or speedscope).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from figures import RESULTS, print_table, write_results

BENCH = Path(__file__).resolve().parent
RATE = 100
WARM_UP = 50  # throughput.py runs min(50, n) warm-up runs first; they are sampled too
IDLE = ("_worker (concurrent/futures/thread.py", "select (selectors.py", "EpollSelector.select", "wait (threading.py")

# First match wins: the sandbox runner's line numbers tell a run's module import from its activations.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("client: start (trigger / start_workflow)", ("trigger.py", "start_reservation", "start_workflow")),
    ("client: results, updates, operator", ("result (", "execute_update", "Operator")),
    ("sandbox: import the workflow module, per run", ("_runner.py:148",)),
    ("sandbox: create the instance, per run", ("_runner.py:160",)),
    ("sandbox: activation, workflow code", ("workflows/", "(bare.py", "(best.py")),
    ("sandbox: activation, SDK", ("_runner.py:176",)),
    ("sandbox: serialization context", ("_runner.py:213", "_runner.py:230")),
    ("sandbox: other", ("workflow_sandbox",)),
    ("SDK: workflow worker outside the sandbox", ("_workflow_instance", "worker/_workflow.py")),
    ("activities: SQL (the same code both sides)", ("sqlalchemy", "sqlite", "sqlmodel")),
    ("activities: other", ("worker/_activity", "activities/", "examples/restaurant/", "bare_activities", "structlog")),
]
OTHER = "event loop, bridge, other"


def record(flavour: str, n: int) -> Path:
    """Run throughput.py for one flavour under py-spy; the raw samples file."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / f"profile-{flavour}.txt"
    command = [py_spy, "record", "--rate", str(RATE), "--nonblocking", "--format", "raw", "-o", str(raw), "--"]
    script = [sys.executable, str(BENCH / "throughput.py"), "--flavours", flavour, "--n", str(n), "--rounds", "1"]
    print(f"$ {' '.join(command + script)}", flush=True)
    subprocess.run(command + script, check=True, stdout=subprocess.DEVNULL)
    return raw


def categorize(raw: Path) -> Counter[str]:
    """Busy samples per category."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        if frames[-1].startswith(IDLE):
            continue
        counts[next((name for name, marks in CATEGORIES if any(m in stack for m in marks)), OTHER)] += int(samples)
    return counts


def run(n: int) -> None:
    runs = n + min(WARM_UP, n)
    per_run: dict[str, dict[str, float]] = {}
    for flavour in ("handoff", "bare"):
        counts = categorize(record(flavour, n))
        per_run[flavour] = {name: count / RATE / runs * 1000 for name, count in counts.items()}
    names = [name for name, _ in CATEGORIES] + [OTHER]
    rows: list[list[Any]] = []
    for name in names:
        handoff, bare = per_run["handoff"].get(name, 0.0), per_run["bare"].get(name, 0.0)
        rows.append([name, handoff, bare, handoff - bare])
    totals = [sum(per_run[f].values()) for f in ("handoff", "bare")]
    rows.append(["total busy", totals[0], totals[1], totals[0] - totals[1]])
    print_table(
        ["sampled ms per run", "handoff", "bare", "difference"], rows, title="Bench process, by category (py-spy)"
    )
    write_results("profile", {"parameters": {"n": n, "rate": RATE}, "ms_per_run": per_run}, [])
    print(f"profile: {totals[0]:.1f} sampled ms per Handoff run, {totals[1]:.1f} per bare run")


if __name__ == "__main__":
    from harness import arguments

    run(arguments(__doc__ or "", default_n=300).n)
    sys.stdout.flush()

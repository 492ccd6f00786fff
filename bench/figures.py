"""Measuring and reporting, for every benchmark: clocks, CPU and memory of processes, percentiles, goals, the
printed tables and the JSON under bench/results/."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from handoff.workers.server import temporal_binary

RESULTS = Path(__file__).resolve().parent / "results"


class Clock:
    """Elapsed seconds since creation (monotonic)."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) a process has used so far, all its threads: this process by default."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid() -> int | None:
    """The pid of the `temporal` dev server this process started, or None when there is none."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        if name == "temporal" and int(rest.split()[1]) == me:
            return int(entry.name)
    return None


def rss_mb(pid: int) -> float:
    """Resident memory of a process now (VmRSS in /proc/<pid>/status), in MB."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process so far (VmHWM), in MB."""
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise LookupError(f"no {field} in /proc/{pid}/status")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating linearly between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Goal:
    """One figure beside its goal; `met` is None when this run cannot measure it (`measured` says why)."""

    figure: str
    measured: str
    goal: str
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "measured": self.measured, "goal": self.goal, "met": self.met}

    @property
    def status(self) -> str:
        return status(self.met)


def status(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "NOT MET"


def verdict(goals: Sequence[Goal]) -> str:
    """`met` when every goal measured here is met, `NOT MET` otherwise, `not measured` when none was measured."""
    measured = [g.met for g in goals if g.met is not None]
    return "not measured" if not measured else "met" if all(measured) else "NOT MET"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A plain-text table; numbers right-aligned, floats with two decimals."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)]
    if title:
        print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print("  ".join("-" * w for w in widths))
    for row, raw in zip(cells, rows, strict=True):
        aligned = (
            cell.rjust(width) if isinstance(value, int | float) else cell.ljust(width)
            for cell, value, width in zip(row, raw, widths, strict=True)
        )
        print("  ".join(aligned).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_goals(goals: Sequence[Goal]) -> None:
    print_table(
        ["figure", "measured", "goal", "met?"],
        [[g.figure, g.measured, g.goal, g.status] for g in goals],
        title="Goals",
    )


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was (other processes share the cores)."""
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    version = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "temporal": version,
        "platform": platform.platform(),
        "load_average_1_5_15": os.getloadavg(),
        "revision": revision(),
    }


def revision() -> str:
    """The commit measured, with "+dirty" when the runtime's code has uncommitted changes (others work here too)."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "schemas", "workflows", "activities", "workers")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def write_results(name: str, data: dict[str, Any], goals: Sequence[Goal]) -> Path:
    """bench/results/<name>.json: when, on what, the parameters and figures, and the goals."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **data,
        "goals": [g.as_dict() for g in goals],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path

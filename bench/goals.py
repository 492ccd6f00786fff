"""The performance issue's goals, each computed from a benchmark's figures: one source for the scripts' own goal
tables and for `make bench`'s final table (bench/run_all.py), which prints every goal beside its figure, met or not.

Each `*_goals(data)` takes what the script writes to bench/results/<name>.json (or None when it did not run) and
returns every goal of that benchmark, in a fixed order; a goal this run cannot measure (too small, or no script
measures it) has `met=None` and says in `measured` what would measure it.

The flavours: `handoff`; `bare`, the samples-style hand-written workflow (bench/bare.py); `best`, the best
hand-written workflow (bench/best.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from figures import Goal, print_table

THROUGHPUT_VS_BARE = 1.2
THROUGHPUT_VS_BEST = 0.95
BYTES_VS_BARE = 1.1
ROUND_TRIP_CACHED_MS = 15.0
ROUND_TRIP_EVICTED_MS = 60.0
PARKED_RUNS = 10_000
PARKED_FLAT = 0.10
PARK_RESUME_VS_BARE = 1.2
POLLING_S = 1.5
RUN_PARKED = f"not measured here (run bench/parked.py --n {PARKED_RUNS})"


def _missing(figure: str, goal: str, why: str) -> Goal:
    return Goal(figure=figure, measured=why, goal=goal, met=None)


def _flavours(data: dict[str, Any] | None, key: str, script: str, *names: str) -> tuple[dict[str, Any] | None, str]:
    """data[key] when it holds every flavour named, else None and why not."""
    if data is None:
        return None, f"not measured ({script} did not run)"
    found = data.get(key, {})
    absent = [name for name in names if name not in found]
    if absent:
        return None, f"not measured ({script} ran without {', '.join(absent)})"
    return found, ""


def throughput_goals(data: dict[str, Any] | None) -> list[Goal]:
    """Throughput against both baselines, and the dev server's CPU per run against bare's."""
    goals = []
    totals, why = _flavours(data, "totals", "throughput.py", "handoff", "bare")
    figure, goal = "throughput, Handoff / samples-style bare", f">= {THROUGHPUT_VS_BARE} x"
    if totals is None:
        goals.append(_missing(figure, goal, why))
    else:
        h, b = totals["handoff"]["per_second"], totals["bare"]["per_second"]
        goals.append(Goal(figure, f"{h / b:.2f} x ({h:.1f} vs {b:.1f} handoffs/s)", goal, h / b >= THROUGHPUT_VS_BARE))
    best, why_best = _flavours(data, "totals", "throughput.py", "handoff", "best")
    figure, goal = "throughput, Handoff / best hand-written", f">= {THROUGHPUT_VS_BEST} x"
    if best is None:
        goals.append(_missing(figure, goal, why_best))
    else:
        h, b = best["handoff"]["per_second"], best["best"]["per_second"]
        goals.append(Goal(figure, f"{h / b:.2f} x ({h:.1f} vs {b:.1f} handoffs/s)", goal, h / b >= THROUGHPUT_VS_BEST))
    figure, goal = "dev server CPU per run, Handoff", "<= samples-style bare"
    if totals is None:
        goals.append(_missing(figure, goal, why))
    else:
        h, b = totals["handoff"]["server_cpu_ms"], totals["bare"]["server_cpu_ms"]
        goals.append(Goal(figure, f"{h:.1f} ms vs bare {b:.1f} ms", goal, h <= b))
    return goals


def history_goals(data: dict[str, Any] | None) -> list[Goal]:
    """Events and bytes per run, happy path and one-case path, against bare."""
    goals = []
    runs = data.get("runs", {}) if data else {}
    for path in ("happy", "case"):
        for what, ratio in (("events", 1.0), ("bytes", BYTES_VS_BARE)):
            figure = f"history {what} per run, {path} path"
            goal = "<= samples-style bare" if ratio == 1.0 else f"<= {ratio} x samples-style bare"
            handoff, bare = runs.get(f"handoff/{path}"), runs.get(f"bare/{path}")
            if handoff is None or bare is None:
                why = "not measured (history.py did not run)" if data is None else "not measured (flavour missing)"
                goals.append(_missing(figure, goal, why))
                continue
            h, b = handoff[what], bare[what]
            best = runs.get(f"best/{path}")
            shown = f"{h:,} vs bare {b:,}" + (f" (best {best[what]:,})" if best else "")
            if ratio != 1.0:
                shown = f"{h / b:.2f} x: " + shown
            goals.append(Goal(figure, shown, goal, h <= b * ratio))
    return goals


def _p(figures: dict[str, Any], measure: str, q: int) -> float:
    """A percentile from latency's figures, whose keys are ints in the script and strings once read from JSON."""
    values = figures[measure]
    return float(values[q] if q in values else values[str(q)])


def latency_goals(data: dict[str, Any] | None) -> list[Goal]:
    """Decision -> next activity against bare; the update's round trip on a cached run and on an evicted one."""
    goals = []
    figures, why = _flavours(data, "figures", "latency.py", "handoff", "bare")
    figure, goal = "decision -> next activity scheduled, p50", "<= samples-style bare"
    if figures is None:
        goals.append(_missing(figure, goal, why))
    else:
        h, b = _p(figures["handoff"], "scheduled_ms", 50), _p(figures["bare"], "scheduled_ms", 50)
        best = f", best {_p(figures['best'], 'scheduled_ms', 50):.1f}" if "best" in figures else ""
        goals.append(Goal(figure, f"{h:.1f} ms vs bare {b:.1f} ms{best}", goal, h <= b))
    figure, goal = "decision round trip p50, cached run", f"<= {ROUND_TRIP_CACHED_MS:g} ms"
    if figures is None:
        goals.append(_missing(figure, goal, why))
    else:
        h = _p(figures["handoff"], "round_trip_ms", 50)
        others = ", ".join(f"{n} {_p(figures[n], 'round_trip_ms', 50):.1f}" for n in ("bare", "best") if n in figures)
        floor = data.get("floor") if data else None
        if floor:  # bench/floor.py: what an update costs on this server whatever the workflow
            others += f"; an update doing nothing {_p(floor, 'nothing', 50):.1f}"
        goals.append(Goal(figure, f"{h:.1f} ms ({others})", goal, h <= ROUND_TRIP_CACHED_MS))
    figure, goal = "decision round trip p50, run evicted from the cache", f"<= {ROUND_TRIP_EVICTED_MS:g} ms"
    evicted = data.get("evicted") if data else None
    if not evicted or "handoff" not in evicted:
        goals.append(_missing(figure, goal, "not measured (latency.py measures it on workers without a cache)"))
    else:
        h = _p(evicted["handoff"], "round_trip_ms", 50)
        others = ", ".join(f"{n} {_p(evicted[n], 'round_trip_ms', 50):.1f}" for n in ("bare", "best") if n in evicted)
        goals.append(Goal(figure, f"{h:.1f} ms ({others})", goal, h <= ROUND_TRIP_EVICTED_MS))
    return goals


def parked_goals(data: dict[str, Any] | None) -> list[Goal]:
    """10,000 parked runs: memory against bare's, flat beyond the cache, parking and resuming rates; worker start."""
    goals = []
    figures, why = _flavours(data, "figures", "parked.py", "handoff", "bare")
    n = int(data["parameters"]["n"]) if data else 0
    cache = data["parameters"].get("max_cached_workflows") if data else None
    at_size = figures is not None and n >= PARKED_RUNS

    def here(f: Callable[[str], str]) -> str:
        """What this run saw at its own size, after the reason it does not judge the goal."""
        return RUN_PARKED + (f"; at {n:,}: {f('handoff')} vs bare {f('bare')}" if figures else "")

    figure = f"worker resident, {PARKED_RUNS:,} parked"
    goal = "<= samples-style bare at the same cache size"
    if figures is None:
        goals.append(_missing(figure, goal, why))
    else:
        h, b = figures["handoff"]["parked_rss_mb"], figures["bare"]["parked_rss_mb"]
        if at_size:
            goals.append(Goal(figure, f"{h:,.0f} MB vs bare {b:,.0f} MB (cache {cache:,})", goal, h <= b))
        else:
            goals.append(_missing(figure, goal, here(lambda name: f"{figures[name]['parked_rss_mb']:,.0f} MB")))
    goals.append(
        _missing(
            "worker resident, flat beyond the cache",
            f"1,000 / 5,000 / {PARKED_RUNS:,} parked within {PARKED_FLAT:.0%}",
            "not measured here (run bench/parked.py --n 1000, --n 5000 and --n 10000)",
        )
    )
    for what, key in (("parking", "park_seconds"), ("resuming", "resume_seconds")):
        figure, goal = f"{what} all {PARKED_RUNS:,}, runs/s", f">= {PARK_RESUME_VS_BARE} x samples-style bare"
        if figures is None:
            goals.append(_missing(figure, goal, why))
            continue
        h, b = n / figures["handoff"][key], n / figures["bare"][key]
        if at_size:
            goals.append(Goal(figure, f"{h / b:.2f} x ({h:.1f} vs {b:.1f} runs/s)", goal, h / b >= PARK_RESUME_VS_BARE))
        else:
            goals.append(_missing(figure, goal, here(lambda name, key=key: f"{n / figures[name][key]:.1f}/s")))
    figure, goal = "worker polling after start (Handoff)", f"< {POLLING_S:g} s"
    handoff = (data or {}).get("figures", {}).get("handoff")
    if handoff is None:
        goals.append(_missing(figure, goal, why or "not measured (parked.py ran without handoff)"))
    else:
        slowest = max(handoff["start_seconds"], handoff["restart_seconds"])
        shown = f"{handoff['start_seconds']:.2f} s first, {handoff['restart_seconds']:.2f} s after the restart"
        goals.append(Goal(figure, shown, goal, slowest < POLLING_S))
    return goals


BY_BENCHMARK: dict[str, Callable[[dict[str, Any] | None], list[Goal]]] = {
    "throughput": throughput_goals,
    "history": history_goals,
    "latency": latency_goals,
    "parked": parked_goals,
}


def every_goal(documents: dict[str, dict[str, Any] | None]) -> list[tuple[str, Goal]]:
    """(benchmark, goal) for every goal of the issue, from the results of this run (None: the script did not run
    or failed); a benchmark outside the issue's list (readiness) brings the goals it wrote itself."""
    rows = [(name, goal) for name, goals_of in BY_BENCHMARK.items() for goal in goals_of(documents.get(name))]
    for name, document in documents.items():
        if name in BY_BENCHMARK or document is None:
            continue
        for written in document.get("goals", []):
            rows.append(
                (
                    name,
                    Goal(
                        figure=written.get("figure") or name,
                        measured=written.get("measured") or document.get("summary", ""),
                        goal=str(written.get("goal", "")),
                        met=written.get("met"),
                    ),
                )
            )
    return rows


def print_every_goal(rows: Sequence[tuple[str, Goal]]) -> None:
    print_table(
        ["benchmark", "figure", "measured", "goal", "met?"],
        [[name, g.figure, g.measured, g.goal, g.status] for name, g in rows],
        title="Benchmarks: every goal of the performance issue beside its figure",
    )

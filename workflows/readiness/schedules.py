"""A trigger's schedule: one clock Temporal can read, and a named function to take its payloads from.

A cron Temporal cannot parse would make `handoff schedules sync` fail at deploy time, far from the contract; a
schedule without a source would fire and start nothing. The gate says so before anything runs (whether the app
registers the source is `registries.unknown_schedule_source`). Pure: it may run inside a workflow.
"""

from __future__ import annotations

from datetime import timedelta

from handoff.schemas.contract import HandoffContract, Schedule
from handoff.schemas.findings import Finding, FindingKind

CRON_SHORTHANDS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
"""The named crons Temporal takes beside five fields."""

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


def malformed_schedule(contract: HandoffContract) -> list[Finding]:
    """One finding per thing Temporal, or a firing, could not work with in the contract's schedule, if it has one."""
    schedule = contract.trigger.schedule if contract.trigger is not None else None
    return [_malformed(contract, problem) for problem in schedule_problems(schedule)] if schedule is not None else []


def schedule_problems(schedule: Schedule) -> list[str]:
    """Each thing Temporal, or a firing, could not work with, in words; empty when the schedule can run."""
    problems = []
    if (schedule.cron is None) == (schedule.every is None):
        problems.append("give the schedule exactly one clock: cron='0 6 * * *' or every=timedelta(...)")
    if schedule.cron is not None:
        problem = cron_problem(schedule.cron)
        if problem is not None:
            problems.append(f"the cron {schedule.cron!r} cannot be read: {problem}")
    if schedule.every is not None and schedule.every < timedelta(seconds=1):
        problems.append(f"every={schedule.every} is not an interval Temporal runs: one second at least")
    if schedule.catchup_window < timedelta(seconds=10):
        problems.append(f"catchup_window={schedule.catchup_window} is below Temporal's minimum of ten seconds")
    if not schedule.source:
        problems.append("name the function each firing takes its payload from: source='...' (@app.scheduled)")
    return problems


def cron_problem(cron: str) -> str | None:
    """Why Temporal could not read `cron` (five fields, or a shorthand such as @daily), or None when it can."""
    text = cron.strip()
    if text.startswith("@"):
        return None if text in CRON_SHORTHANDS else f"{text} is not one of {', '.join(sorted(CRON_SHORTHANDS))}"
    fields = text.split()
    if len(fields) != len(_FIELDS):
        return f"it has {len(fields)} field(s); a cron has five: minute hour day-of-month month day-of-week"
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in value.split(","):
            problem = _item_problem(item, low, high, names)
            if problem is not None:
                return f"the {name} field {value!r}: {problem}"
    return None


def _item_problem(item: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    span, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) > 0):
        return f"the step {step!r} is not a positive number"
    if span in ("*", "?"):
        return None
    start, dash, end = span.partition("-")
    for part in (start, end) if dash else (start,):
        number = _number(part, low, names)
        if number is None or not low <= number <= high:
            return f"{part!r} is not between {low} and {high}" + (f" (or {names[0]}..{names[-1]})" if names else "")
    return None


def _number(part: str, low: int, names: tuple[str, ...]) -> int | None:
    if part.isdigit():
        return int(part)
    lowered = part.lower()
    return names.index(lowered) + low if lowered in names else None


def _malformed(contract: HandoffContract, problem: str) -> Finding:
    return Finding(
        kind=FindingKind.MALFORMED_SCHEDULE,
        contract=contract.name,
        subject="schedule",
        message=f"{contract.name}: the trigger's schedule cannot run: {problem}.",
    )

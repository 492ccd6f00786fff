"""How long the readiness gate takes on a large catalog: 1,000 generated contracts, some of them broken.

`handoff check` and the worker run the gate on the whole catalog at every start, so it must stay well under a second
for a catalog far larger than any real one. Each contract is of realistic size: its own payload model (two or three
entities, 4 to 8 typed fields each), about ten rules of every kind, one or two sync targets, an exception policy and
a gain. About one in eight is broken in one of the ways the gate looks for; entities are drawn from a shared
vocabulary, so the catalog-wide source-of-truth index sees real collisions (and one contract that names another
owner for `customer` makes every contract carrying a customer NOT READY, which is why far more than one in eight
come out NOT READY).

Contracts cache their content hash, so every timed round checks freshly built contracts (building is not timed).

    python bench/readiness.py [--n 1000] [--rounds 5] [--seed 7]

Prints a table, then one summary line last, and writes bench/results/readiness.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, create_model

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a plain script from anywhere

from handoff.schemas.contract import (  # noqa: E402
    Catalog,
    DecisionKind,
    ExceptionPolicy,
    Gain,
    HandoffContract,
    Measure,
    OperatorGroup,
    Sync,
    SyncTarget,
    Trigger,
)
from handoff.schemas.rules import Compare, Forbidden, Lookup, Max, Min, OneOf, Pattern, Required, Rule, When  # noqa: E402
from handoff.workflows.readiness import check_catalog, contract_findings  # noqa: E402
from handoff.workflows.readiness.ownership import conflicting_owners  # noqa: E402

RESULTS = REPO / "bench" / "results"
GOAL_SECONDS = 1.0

ENTITIES = (
    "customer",
    "order",
    "invoice",
    "reservation",
    "guest",
    "deal",
    "account",
    "shipment",
    "parcel",
    "ticket",
    "product",
    "supplier",
    "employee",
    "shift",
    "table",
    "payment",
    "refund",
    "subscription",
    "lead",
    "contact",
    "quote",
    "contract",
    "asset",
    "booking",
    "room",
    "vehicle",
    "driver",
    "route",
    "visit",
    "patient",
    "appointment",
    "claim",
    "policy",
    "member",
    "course",
    "student",
    "lesson",
    "event",
    "venue",
    "artist",
    "donation",
    "campaign",
)
SYSTEMS = ("crm", "erp", "pos", "booking", "billing", "warehouse", "helpdesk", "hr", "lms", "ticketing")
GROUPS = tuple(OperatorGroup(name=name) for name in ("ops", "finance", "sales-ops", "support", "managers"))
FIELD_TYPES: tuple[tuple[str, Any], ...] = (
    ("int", int | None),
    ("float", float | None),
    ("str", str | None),
    ("datetime", datetime | None),
    ("bool", bool),
)
BREAKS = (
    "no-dedupe-key",
    "contradiction",
    "unknown-field",
    "escalation-loop",
    "conflicting-owner",
    "overwrite",
    "no-gain",
)


def owner_of(entity: str) -> str:
    """Every contract agrees on the owner of an entity, unless it is broken on purpose."""
    return SYSTEMS[sum(map(ord, entity)) % len(SYSTEMS)]


def build_payload(rng: random.Random, index: int) -> tuple[type[BaseModel], dict[str, list[tuple[str, str]]]]:
    """A payload model with 2-3 entities; returns it and each entity's (field, type name) list."""
    entities = rng.sample(ENTITIES, rng.randint(2, 3))
    layout: dict[str, list[tuple[str, str]]] = {}
    top: dict[str, Any] = {}
    for entity in entities:
        fields: dict[str, Any] = {"id": (str, ...)}
        columns = [("id", "str")]
        for position in range(rng.randint(4, 8)):
            type_name, annotation = FIELD_TYPES[rng.randrange(len(FIELD_TYPES))]
            name = f"{type_name}_{position}"
            fields[name] = (annotation, False if type_name == "bool" else None)
            columns.append((name, type_name))
        top[entity] = (create_model(f"{entity.title()}{index}", **fields), ...)
        layout[entity] = columns
    return create_model(f"Event{index}", **top), layout


def build_rules(rng: random.Random, layout: dict[str, list[tuple[str, str]]]) -> list[Rule]:
    """About ten consistent rules over the payload's fields."""
    by_type: dict[str, list[str]] = {}
    for entity, columns in layout.items():
        for name, type_name in columns:
            by_type.setdefault(type_name, []).append(f"{entity}.{name}")
    rules: list[Rule] = []
    for path in (by_type.get("int", []) + by_type.get("float", []))[:3]:
        low = rng.randint(0, 10)
        rules += [Required(field=path, reason="r"), Min(field=path, value=low, reason="r")]
        rules.append(Max(field=path, value=low + rng.randint(1, 100), exclusive=rng.random() < 0.3, reason="r"))
    for path in by_type.get("str", [])[:3]:
        if rng.random() < 0.5:
            rules.append(OneOf(field=path, values=("a", "b", "c")[: rng.randint(1, 3)], reason="r"))
        else:
            rules.append(Pattern(field=path, regex=r"[A-Z]{2}\d{4}", reason="r"))
    moments = by_type.get("datetime", [])
    if len(moments) >= 2:
        rules.append(Compare(left=moments[1], op=">", right=moments[0], reason="r"))
    numbers = by_type.get("int", []) + by_type.get("float", [])
    texts = by_type.get("str", [])
    if numbers and texts:
        rules.append(
            When(
                condition=Min(field=numbers[0], value=50, reason="c"),
                then=Required(field=texts[-1], reason="t"),
                reason="r",
            )
        )
    first_entity = next(iter(layout))
    rules.append(Lookup(check=f"{owner_of(first_entity)}.exists", field=f"{first_entity}.id", reason="r"))
    if texts and rng.random() < 0.3:
        rules.append(Forbidden(field=texts[0], reason="r"))
    return rules[:12]


def contract_parts(rng: random.Random, index: int) -> tuple[dict[str, Any], str | None]:
    """The constructor arguments of one contract, and how it was broken (None when it is meant to be READY)."""
    payload, layout = build_payload(rng, index)
    entities = list(layout)
    paths = [f"{entity}.{name}" for entity, columns in layout.items() for name, _ in columns]
    rules = build_rules(rng, layout)
    owners = {entity: owner_of(entity) for entity in entities}
    target_systems = [system for system in SYSTEMS if system not in owners.values()]
    synced = rng.sample(paths, min(len(paths), rng.randint(4, 9)))
    split = len(synced) // 2
    targets = [SyncTarget(system=target_systems[0], fields=tuple(synced[:split] or synced))]
    if rng.random() < 0.5 and synced[split:]:
        targets.append(SyncTarget(system=target_systems[1], fields=tuple(synced[split:])))
    local = tuple(path for path in paths if path not in synced)
    chain = rng.sample([group.name for group in GROUPS], rng.randint(1, 3))
    parts: dict[str, Any] = {
        "name": f"handoff-{index:04d}",
        "trigger": Trigger(event=f"event.{index}", payload=payload, dedupe_key=f"{entities[0]}.id"),
        "source_of_truth": owners,
        "sync": Sync(targets=tuple(targets), local=local),
        "rules": tuple(rules),
        "exceptions": ExceptionPolicy(
            owner=chain[0], escalation=tuple(chain[1:]), sla=timedelta(hours=4), on_timeout=DecisionKind.REJECT
        ),
        "gain": Gain(metric="cycle time", unit="seconds", measure=Measure.CYCLE_TIME, baseline=3600, target=300),
    }
    if rng.random() >= 1 / 8:
        return parts, None
    broken = rng.choice(BREAKS)
    if broken == "no-dedupe-key":
        parts["trigger"] = Trigger(event=f"event.{index}", payload=payload)
    elif broken == "contradiction":
        path = f"{entities[-1]}.id"
        parts["rules"] = (*rules, Required(field=path, reason="r"), Forbidden(field=path, reason="r"))
    elif broken == "unknown-field":
        parts["rules"] = (*rules, Required(field=f"{entities[0]}.missing", reason="r"))
    elif broken == "escalation-loop":
        parts["exceptions"] = ExceptionPolicy(
            owner=chain[0], escalation=(*chain[1:], chain[0]), on_timeout=DecisionKind.REJECT
        )
    elif broken == "conflicting-owner":
        parts["source_of_truth"] = {**owners, entities[0]: "spreadsheet"}
    elif broken == "overwrite":
        targets[0] = SyncTarget(system=owners[entities[0]], fields=(f"{entities[0]}.id",))
        parts["sync"] = Sync(targets=tuple(targets), local=local)
    else:
        parts["gain"] = None
    return parts, broken


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def cpu_timed(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds: on a shared machine the CPU figure shows the cost, the wall figure what a user waits."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def machine() -> dict[str, Any]:
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 12}")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def run(n: int, rounds: int, seed: int) -> bool:
    rng = random.Random(seed)
    started = time.perf_counter()
    generated = [contract_parts(rng, index) for index in range(n)]
    generation_seconds = time.perf_counter() - started
    breaks = Counter(broken for _, broken in generated if broken is not None)

    def fresh_catalog() -> Catalog:
        return Catalog(groups=GROUPS, contracts=tuple(HandoffContract(**parts) for parts, _ in generated))

    totals, cpus, checks_only, hashes = [], [], [], []
    readiness = None
    for _ in range(rounds):
        catalog = fresh_catalog()
        seconds, cpu, readiness = cpu_timed(lambda catalog=catalog: check_catalog(catalog))
        totals.append(seconds)
        cpus.append(cpu)
        catalog = fresh_catalog()

        def checks(catalog: Catalog = catalog) -> None:
            for contract in catalog.contracts:
                contract_findings(contract, declared_groups=catalog.group_names)
            conflicting_owners(catalog.contracts)

        checks_only.append(timed(checks)[0])
        hashes.append(timed(lambda catalog=catalog: [c.content_hash() for c in catalog.contracts])[0])
    assert readiness is not None

    rules = sum(len(parts["rules"]) for parts, _ in generated)
    not_ready = sum(not contract.ready for contract in readiness.contracts)
    kinds = Counter(finding.kind.value for finding in readiness.findings)
    best = min(totals)
    met = best < GOAL_SECONDS
    print_table(
        [
            ("contracts", f"{n}"),
            ("rules (mean per contract)", f"{rules / n:.1f}"),
            (
                "broken on purpose",
                f"{sum(breaks.values())} ({', '.join(f'{k} {v}' for k, v in sorted(breaks.items()))})",
            ),
            ("NOT READY found", f"{not_ready}"),
            ("findings", f"{len(readiness.findings)}"),
            *[(f"  {kind}", f"{count}") for kind, count in sorted(kinds.items())],
            ("generation (not timed)", f"{generation_seconds:.2f} s"),
            (f"check_catalog, best of {rounds}", f"{best:.3f} s"),
            (f"check_catalog, median of {rounds}", f"{statistics.median(totals):.3f} s"),
            (f"check_catalog CPU, best of {rounds}", f"{min(cpus):.3f} s"),
            ("  of which the checks alone (best)", f"{min(checks_only):.3f} s"),
            ("  of which content_hash (best)", f"{min(hashes):.3f} s"),
            ("per contract (best)", f"{best / n * 1e6:.0f} µs"),
            ("machine load (1 min)", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"),
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "readiness",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": {"n": n, "rounds": rounds, "seed": seed},
        "figures": {
            "check_catalog_seconds": totals,
            "check_catalog_cpu_seconds": cpus,
            "load_average": os.getloadavg()[0],
            "checks_only_seconds": checks_only,
            "content_hash_seconds": hashes,
            "best_seconds": best,
            "rules": rules,
            "broken": dict(breaks),
            "not_ready": not_ready,
            "findings": len(readiness.findings),
            "findings_by_kind": dict(sorted(kinds.items())),
        },
        "goals": [{"goal": f"check_catalog on {n} contracts < {GOAL_SECONDS:g} s", "met": met}],
    }
    (RESULTS / "readiness.json").write_text(json.dumps(document, indent=2) + "\n")
    verdict = "met" if met else "not met"
    print(
        f"readiness: {n} contracts in {best:.2f} s (goal < {GOAL_SECONDS:g} s: {verdict}; "
        f"checks {min(checks_only):.2f} s, content_hash {min(hashes):.2f} s)"
    )
    return met


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="how many contracts")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the best counts")
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    sys.exit(0 if run(arguments.n, arguments.rounds, arguments.seed) else 1)

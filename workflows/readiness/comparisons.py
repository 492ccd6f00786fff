"""Comparisons between fields that cannot all hold: `a > b` with `b > a`, `a < b < c < a`, `a != b` with `a == b`.

Comparisons form a graph: an edge from `a` to `b` says "a is at most b" (strict for `<`). A set of comparisons is
unsatisfiable exactly when the graph has a cycle through a strict edge (everything on a cycle of at-mosts is equal,
so nothing on it can be strictly less), or when `a != b` while at-most paths run both ways between `a` and `b`. The
finding names the rules on the shortest such cycle; that cycle is reported, its rules are set aside, and the rest is
searched again.

A comparison only judges events that carry both fields, so the clash shows when all of them are present.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind
from handoff.schemas.rules import Compare
from handoff.workflows.readiness.payload import PayloadShape
from handoff.workflows.readiness.rule_types import type_mismatch

_NEVER_SELF = frozenset({"<", ">", "!="})
"""Operators that never hold between a value and itself."""


@dataclass(frozen=True)
class _Edge:
    low: str
    high: str
    strict: bool
    order: int


def contradictory_comparisons(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    """One finding per comparison of a field with itself that never holds, and per cycle of clashing comparisons."""
    findings: list[Finding] = []
    compares: dict[int, Compare] = {}
    for order, rule in enumerate(contract.rules):
        if not isinstance(rule, Compare) or type_mismatch(rule, shape) is not None:
            continue
        if rule.left != rule.right:
            compares[order] = rule
        elif rule.op in _NEVER_SELF:
            findings.append(
                _finding(
                    contract,
                    [rule],
                    f"rule '{rule.label}' compares {rule.left} with itself using '{rule.op}', which never holds: "
                    f"every event with a value there would open an exception case. Compare two different fields.",
                )
            )
    while (clash := _smallest_clash(compares)) is not None:
        rules = [compares[order] for order in sorted(clash)]
        fields = list(dict.fromkeys(path for rule in rules for path in (rule.left, rule.right)))
        findings.append(
            _finding(
                contract,
                rules,
                f"the comparisons {' and '.join(repr(rule.label) for rule in rules)} cannot all hold: together they "
                f"ask {', '.join(fields)} to be both below and above each other, so no event that carries these "
                "fields can pass. Which order is meant? Fix or remove one of them.",
            )
        )
        compares = {order: rule for order, rule in compares.items() if order not in clash}
    return findings


def _smallest_clash(compares: dict[int, Compare]) -> frozenset[int] | None:
    edges: list[_Edge] = []
    unequal: list[tuple[int, Compare]] = []
    for order, rule in compares.items():
        match rule.op:
            case "<" | "<=":
                edges.append(_Edge(rule.left, rule.right, strict=rule.op == "<", order=order))
            case ">" | ">=":
                edges.append(_Edge(rule.right, rule.left, strict=rule.op == ">", order=order))
            case "==":
                edges += [_Edge(rule.left, rule.right, False, order), _Edge(rule.right, rule.left, False, order)]
            case "!=":
                unequal.append((order, rule))
    above: dict[str, list[_Edge]] = {}
    for edge in edges:
        above.setdefault(edge.low, []).append(edge)
    clashes: list[frozenset[int]] = []
    for edge in edges:
        if edge.strict and (back := _shortest_path(above, edge.high, edge.low)) is not None:
            clashes.append(frozenset({edge.order, *back}))
    for order, rule in unequal:
        there = _shortest_path(above, rule.left, rule.right)
        back = _shortest_path(above, rule.right, rule.left)
        if there is not None and back is not None:
            clashes.append(frozenset({order, *there, *back}))
    return min(clashes, key=lambda clash: (len(clash), sorted(clash)), default=None)


def _shortest_path(above: dict[str, list[_Edge]], start: str, goal: str) -> list[int] | None:
    """The rule orders along a shortest at-most path from `start` to `goal`, or None when there is none."""
    came_by: dict[str, _Edge | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            orders = []
            while (edge := came_by[node]) is not None:
                orders.append(edge.order)
                node = edge.low
            return orders
        for edge in above.get(node, ()):
            if edge.high not in came_by:
                came_by[edge.high] = edge
                queue.append(edge.high)
    return None


def _finding(contract: HandoffContract, rules: Sequence[Compare], message: str) -> Finding:
    return Finding(
        kind=FindingKind.CONTRADICTORY_RULES,
        contract=contract.name,
        subject=" / ".join(dict.fromkeys(rule.label for rule in rules)),
        message=f"{contract.name}: {message}",
    )

"""The restaurant demo (`make demo`): the whole story on this machine, from nothing, in about a minute.

    python -m examples.restaurant.demo [--home .handoff/demo]


It starts the embedded Temporal server, a worker and the HTTP API for this app as real processes (`handoff server`,
`handoff worker --app examples.restaurant:app`, `handoff api --app ...`), registers the operators and an
administrator (whose API token sends the events and reads the cases, runs and report), sends ~50 events through the API (some bad, some repeated, two malformed), shows the open cases, decides them as
their owners (after one refused attempt by a non-owner), prints the report, and stops everything it started.
Any step that does not go as it should makes the demo exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from examples.restaurant import app
from examples.restaurant.demo_events import DemoEvent, demo_events

APP = "examples.restaurant:app"

console = Console()

OPERATORS = {
    "hana": ("front-of-house",),
    "max": ("restaurant-managers",),
    "kai": ("kitchen-leads",),
    "sam": ("sales-ops",),
    "fin": ("finance",),
}
ADMINISTRATOR = "admin"
"""Sends the events and reads over the API; in production a system sending events would hold a `source` token."""
OWNER_OF = {"reservation-to-pos": "hana", "lead-to-invoice": "sam", "order-to-kitchen": "kai"}

KEEP_EXPLORING = """
Everything the demo started is stopped. To keep exploring, start the stack and leave it running (Ctrl-C stops it):
  .venv/bin/handoff up --app examples.restaurant:app
It prints the addresses of the API, its OpenAPI docs, the operators' inbox and the Temporal UI; then try
`handoff trigger`, `handoff cases` and `handoff decide` (each has --help). To decide cases in the browser, add an
operator, open the inbox address it prints (/inbox) and sign in with the token this prints:
  .venv/bin/handoff operators add YOU --group front-of-house --app examples.restaurant:app"""


class DemoFailed(Exception):
    """A step of the demo did not go as it should."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise DemoFailed(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


@contextmanager
def _process(name: str, args: list[str], env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start `handoff <args>`; on the way out, SIGTERM it and wait (SIGKILL after 20 s)."""
    handoff = str(Path(sys.executable).parent / "handoff")
    with (logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen([handoff, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    console.print(f"  started {name} (pid {process.pid}, log {logs / f'{name}.log'})")
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        console.print(f"  stopped {name} (exit {process.returncode})")


def _add_operator(name: str, groups: tuple[str, ...], env: dict[str, str], role: str = "operator") -> str:
    """`handoff operators add`, as an administrator would; the operator's API token."""
    handoff = str(Path(sys.executable).parent / "handoff")
    group_args = [arg for group in groups for arg in ("--group", group)]
    done = subprocess.run(
        [handoff, "operators", "add", name, *group_args, "--role", role, "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise DemoFailed(f"`handoff operators add {name}` failed: {done.stderr.strip()}")
    token: str = json.loads(done.stdout)["token"]
    return token


def run_demo(home: Path) -> None:
    """Run the demo with its state under `home` (wiped first, so every run tells the same story)."""
    shutil.rmtree(home, ignore_errors=True)
    logs = home / "logs"
    logs.mkdir(parents=True)
    grpc, ui, api = _free_port(), _free_port(), _free_port()
    env = dict(os.environ)
    env.update(
        HANDOFF_HOME=str(home),
        HANDOFF_TEMPORAL_ADDRESS=f"127.0.0.1:{grpc}",
        HANDOFF_SERVER_PORT=str(grpc),
        HANDOFF_SERVER_UI_PORT=str(ui),
        HANDOFF_API_PORT=str(api),
        HANDOFF_LOG_FORMAT="json",
        HANDOFF_GRACEFUL_SHUTDOWN_SECONDS="5",
        HANDOFF_APP=APP,
        RESTAURANT_DATABASE_URL=f"sqlite:///{home / 'restaurant.db'}",
    )
    console.rule("[bold]Handoff demo")
    with ExitStack() as stack:
        console.print("[bold]1. Start the embedded Temporal server, a worker and the API")
        stack.enter_context(_process("server", ["server"], env, logs))
        _wait_for_port(grpc, "the Temporal server")
        tokens = {name: _add_operator(name, groups, env) for name, groups in OPERATORS.items()}
        administrator = _add_operator(ADMINISTRATOR, (), env, role="administrator")
        stack.enter_context(_process("worker", ["worker"], env, logs))
        stack.enter_context(_process("api", ["api"], env, logs))
        _wait_for_port(api, "the API")
        base = f"http://127.0.0.1:{api}"
        # The administrator's token goes with every request; a decision sends its operator's token instead.
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {administrator}"}) as http:
            _wait_healthy(http)
            console.print(f"  operators: {', '.join(f'{n} ({OPERATORS[n][0]})' for n in OPERATORS)}")

            console.print("\n[bold]2. Send the events through POST /events/{event}")
            events = demo_events()
            sent = _send_events(http, events)

            console.print("\n[bold]3. Wait for every run to be delivered or to wait on a case")
            _wait_for_runs(http, sent, settled={"delivered", "awaiting-decision", "rejected"})
            cases = _get(http, "/cases")
            _show_cases(cases)
            expected_cases = sum(1 for e in events if e.flaw)
            if len(cases) != expected_cases:
                raise DemoFailed(f"expected {expected_cases} open cases, found {len(cases)}")

            console.print("\n[bold]4. Decide the cases as their owners")
            _refused_attempt(http, cases[0], tokens)
            by_workflow = {_workflow_id(e): e for e in events}
            for case in cases:
                _decide(http, case, by_workflow[case["workflow_id"]], tokens)

            console.print("\n[bold]5. Every run ends")
            runs = _wait_for_runs(http, sent, settled={"delivered", "rejected"})
            stages: dict[str, int] = {}
            for run in runs:
                stages[run["stage"]] = stages.get(run["stage"], 0) + 1
            console.print(f"  {len(runs)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(stages.items())))

            console.print("\n[bold]6. The report")
            report = _get(http, "/report")
            _show_report(report)
        console.print("\n[bold]7. Stop everything the demo started")
    console.rule("[bold green]demo finished")
    console.print(KEEP_EXPLORING)


def _wait_healthy(http: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise DemoFailed("the API did not become healthy within 60 s")


def _workflow_id(event: DemoEvent) -> str:
    contract = app.catalog.for_event(event.event)
    assert contract.trigger is not None and contract.trigger.dedupe_key is not None
    entity, field = contract.trigger.dedupe_key.split(".", 1)
    return f"{contract.name}/{event.payload[entity][field]}"


def _send_events(http: httpx.Client, events: list[DemoEvent]) -> set[str]:
    sent: set[str] = set()
    for event in events:
        accepted = _expect(http.post(f"/events/{event.event}", json=event.payload), 202)
        sent.add(accepted["workflow_id"])
    console.print(f"  {len(events)} events accepted (202), {sum(1 for e in events if e.flaw)} of them with bad data")
    for event in events[:3]:
        again = _expect(http.post(f"/events/{event.event}", json=event.payload), 202)
        if not again["duplicate"]:
            raise DemoFailed(f"a repeated event started a second run: {again}")
    console.print("  3 events sent again: each answered with its existing run (duplicate: true)")
    malformed = http.post(
        "/events/reservation.confirmed", content=b"{not json", headers={"content-type": "application/json"}
    )
    wrong = http.post("/events/order.placed", json={"order": {"id": "O-9", "total_cents": "a lot"}, "customer": {}})
    for response in (malformed, wrong):
        if response.status_code != 422:
            raise DemoFailed(f"a malformed event got {response.status_code}, not 422: {response.text}")
        console.print(f"  malformed event refused: 422 {response.json()['detail']}")
    return sent


def _wait_for_runs(http: httpx.Client, workflow_ids: set[str], *, settled: set[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = [r for r in _get(http, "/runs", limit=500) if r["workflow_id"] in workflow_ids]
        if len(runs) == len(workflow_ids) and all(r["stage"] in settled for r in runs):
            return runs
        time.sleep(0.3)
    raise DemoFailed(f"runs did not settle in {sorted(settled)} within 90 s")


def _show_cases(cases: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(cases)} open cases", title_justify="left")
    for column in ("case", "handoff", "owner", "SLA left", "violations"):
        table.add_column(column)
    for case in cases:
        table.add_row(
            case["id"],
            case["handoff"],
            case["owner_group"],
            f"{case['sla_left_seconds'] / 60:.0f} min",
            "; ".join(case["violations"]),
        )
    console.print(table)


def _refused_attempt(http: httpx.Client, case: dict[str, Any], tokens: dict[str, str]) -> None:
    outsider = next(name for name, groups in OPERATORS.items() if case["owner_group"] not in groups)
    response = http.post(
        f"/cases/{case['id']}/decision",
        json={"decision": "reject", "reason": "not my call, but let me try"},
        headers={"Authorization": f"Bearer {tokens[outsider]}"},
    )
    if response.status_code != 403:
        raise DemoFailed(f"a non-owner's decision got {response.status_code}, not 403: {response.text}")
    console.print(f"  {outsider} tries to decide {case['id']}: 403 {response.json()['detail']}")


def _decide(http: httpx.Client, case: dict[str, Any], event: DemoEvent, tokens: dict[str, str]) -> None:
    operator = OWNER_OF[case["handoff"]]
    assert event.decision is not None
    body = {"decision": event.decision.value, "reason": f"demo: {event.flaw}", "patch": event.patch}
    decided = _expect(
        http.post(f"/cases/{case['id']}/decision", json=body, headers={"Authorization": f"Bearer {tokens[operator]}"}),
        200,
    )
    patch = f" {event.patch}" if event.patch else ""
    console.print(
        f"  {operator}: {event.decision.value}{patch} on {case['id']} ({event.flaw}) -> {decided['next_stage']}"
    )


def _show_report(report: dict[str, Any]) -> None:
    table = Table(title="Report", title_justify="left")
    for column in ("handoff", "runs", "delivered", "rejected", "exception rate", "cycle p50/p95", "gain"):
        table.add_column(column)
    for line in report["handoffs"]:
        cycle = line["cycle_time"]
        gain = line.get("gain") or {}
        table.add_row(
            line["handoff"],
            str(line["runs"]),
            str(line["delivered"]),
            str(line["rejected"]),
            f"{line['exception_rate_pct']:.0f}%" if line.get("exception_rate_pct") is not None else "-",
            f"{cycle['p50'] or 0:.1f}s / {cycle['p95'] or 0:.1f}s",
            f"{gain.get('measure', '')} {_figure(gain.get('actual'))} vs target {_figure(gain.get('target'))}: "
            f"{gain.get('verdict', '')}",
        )
    console.print(table)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _get(http: httpx.Client, path: str, **params: Any) -> Any:
    return _expect(http.get(path, params=params), 200)


def _expect(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise DemoFailed(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    return response.json()


def main() -> None:
    parser = argparse.ArgumentParser(description="The restaurant demo, end to end, then everything stopped.")
    parser.add_argument("--home", type=Path, default=Path(".handoff/demo"), help="Its state (wiped first).")
    arguments = parser.parse_args()
    try:
        run_demo(arguments.home)
    except DemoFailed as failed:
        Console(stderr=True).print(f"[bold red]The demo failed:[/] {failed}")
        sys.exit(1)


if __name__ == "__main__":
    main()

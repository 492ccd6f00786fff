"""Acceptance: a user's app, written outside the engine (tests/user_app), runs end to end over HTTP.

Everything is real: the Temporal dev server, a worker for the app, the Handoff API served by uvicorn, and the
clinic's billing service, a small Starlette app served by uvicorn on its own loopback port that the user's adapter
reaches with httpx. Events and decisions go to the API over TCP, as scheduling and the front desk would send them.
"""

from __future__ import annotations

import ast
import asyncio
import socket
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.client import Client
from temporalio.worker import Worker

import handoff
from handoff import AppNotReady, Lookup, WriteOutcome
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.schemas.runs import Stage
from handoff.workers.api import create_app
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.user_app import APPOINTMENT_TO_BILLING, BillingAdapter, build_app

HANDOFF = APPOINTMENT_TO_BILLING.name
EVENT = "appointment.booked"
SLA_SCALE = 1 / 120
"""The contract's two-hour SLA becomes a minute: time to decide by hand, and nothing escalates meanwhile."""

USER_PACKAGE = Path(__file__).parent / "user_app"


class BillingService:
    """The clinic's billing service: invoice lines kept in memory by idempotency key, and every write counted.

    `POST /invoice-lines` with an `Idempotency-Key` header answers 201 for a new key, 200 with the stored line for
    a key seen before, and 409 when a known key comes with a different line.
    """

    def __init__(self) -> None:
        self.lines: dict[str, dict[str, Any]] = {}
        self.writes: Counter[str] = Counter()
        self.asgi = Starlette(routes=[Route("/invoice-lines", self._post_line, methods=["POST"])])

    async def _post_line(self, request: Request) -> JSONResponse:
        key = request.headers.get("Idempotency-Key")
        if not key:
            return JSONResponse({"detail": "an Idempotency-Key header is required"}, status_code=400)
        line = await request.json()
        self.writes[key] += 1
        stored = self.lines.get(key)
        if stored is None:
            self.lines[key] = line
            return JSONResponse(line, status_code=201)
        if stored != line:
            return JSONResponse({"detail": f"key {key!r} was used for another line", "stored": stored}, 409)
        return JSONResponse(stored, status_code=200)


@asynccontextmanager
async def serving(asgi: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1:<free port> for the block; yield its base URL."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections of a socket that says it is TCP,
    # and without it every answer after a connection's first waits ~40 ms for a delayed ACK (Nagle).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as listener:
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(asgi, log_config=None, lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            while not server.started:
                if task.done():
                    task.result()  # the server failed to start: raise its error
                await asyncio.sleep(0.01)
            yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def billing() -> AsyncIterator[tuple[BillingService, str]]:
    """The billing service, served for one test, and its URL."""
    service = BillingService()
    async with serving(service.asgi) as url:
        yield service, url


@pytest.fixture
async def clinic(client: Client, billing: tuple[BillingService, str], tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker for the clinic's app, its adapter pointed at the billing service."""
    _, url = billing
    async with (
        BillingAdapter(url) as adapter,
        running_handoffs(client, build_app(adapter), tmp_path, sla_scale=SLA_SCALE) as kit,
    ):
        yield kit


@pytest.fixture
async def api(clinic: HandoffKit) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the Handoff API of the clinic's app, served by uvicorn, with an administrator's token
    (which sends events and reads; a decision sends its operator's token instead)."""
    token = add_operator(clinic.ledger, "admin", [], declared_groups=[], role=Role.ADMINISTRATOR)
    served = create_app(clinic.settings, clinic.app, client=clinic.client, ledger=clinic.ledger)
    headers = {"Authorization": f"Bearer {token}"}
    async with serving(served) as url, httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        yield http


def booking(appointment_id: str, *, dentist: str, fee_cents: int) -> dict[str, Any]:
    """Scheduling's `appointment.booked` payload."""
    return {
        "appointment": {
            "id": appointment_id,
            "dentist_id": dentist,
            "starts_at": "2025-03-04T09:30:00Z",
            "treatment": "filling",
            "fee_cents": fee_cents,
        },
        "patient": {"name": "Ada Byron", "phone": "+44 20 7946 0000", "insurance_number": "INS-77"},
    }


async def send(api: httpx.AsyncClient, payload: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(f"/events/{EVENT}", json=payload)
    assert 202 == response.status_code, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


async def listed_case(api: httpx.AsyncClient, workflow_id: str, timeout: float = 15) -> dict[str, Any]:
    """The open case of `workflow_id` once `GET /cases` lists it (the ledger records it just after it opens)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        response = await api.get("/cases", params={"handoff": HANDOFF})
        assert 200 == response.status_code, response.text
        cases = [case for case in response.json() if case["workflow_id"] == workflow_id]
        if cases:
            [case] = cases
            return case
        await asyncio.sleep(0.05)
    raise TimeoutError(f"GET /cases did not list a case of {workflow_id} within {timeout}s")


async def test_a_user_app_delivers_each_booking_to_billing_over_http_exactly_once(
    api: httpx.AsyncClient, clinic: HandoffKit, billing: tuple[BillingService, str]
) -> None:
    """A good booking is delivered; a bad one opens a case the front desk corrects over HTTP, then is delivered;
    the good one again is a duplicate. Billing holds one line per booking, written once, its amount transformed."""
    service, _ = billing
    token = add_operator(clinic.ledger, "rita", ["front-desk"], declared_groups=clinic.app.catalog.group_names)

    good = await send(api, booking("APT-1001", dentist="D-ANNA", fee_cents=12345))
    assert (HANDOFF, False) == (good["handoff"], good["duplicate"])
    assert Stage.DELIVERED == (await clinic.result(good["workflow_id"])).stage

    bad = await send(api, booking("APT-1002", dentist="D-ZOE", fee_cents=8050))  # D-ZOE is not on the staff
    case = await listed_case(api, bad["workflow_id"])
    assert ("front-desk", ["scheduling.dentist_exists(appointment.dentist_id)"]) == (
        case["owner_group"],
        case["violations"],
    )
    decided = await api.post(
        f"/cases/{case['id']}/decision",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "decision": "correct",
            "reason": "Booked under Ben, Zoe's cover.",
            "patch": {"appointment.dentist_id": "D-BEN"},
        },
    )
    assert 200 == decided.status_code, decided.text
    assert ("validating", "rita") == (decided.json()["next_stage"], decided.json()["case"]["decision"]["operator"])
    assert Stage.DELIVERED == (await clinic.result(bad["workflow_id"])).stage

    again = await send(api, booking("APT-1001", dentist="D-ANNA", fee_cents=12345))
    assert (good["workflow_id"], good["run_id"], True) == (again["workflow_id"], again["run_id"], again["duplicate"])

    line = {"treatment": "filling", "patient": "Ada Byron", "insurance_number": "INS-77"}
    assert {
        good["workflow_id"]: {"appointment_ref": "APT-1001", "amount": "123.45", **line},
        bad["workflow_id"]: {"appointment_ref": "APT-1002", "amount": "80.50", **line},
    } == service.lines
    assert {good["workflow_id"]: 1, bad["workflow_id"]: 1} == dict(service.writes)

    runs = await api.get("/runs", params={"handoff": HANDOFF})
    assert 200 == runs.status_code, runs.text
    assert {(good["workflow_id"], "delivered", 0), (bad["workflow_id"], "delivered", 1)} == {
        (run["workflow_id"], run["stage"], run["cases"]) for run in runs.json()
    }
    detail = await api.get(f"/runs/{good['workflow_id']}")
    assert 200 == detail.status_code, detail.text
    [delivery] = detail.json()["status"]["deliveries"]
    assert ("billing", good["workflow_id"], "123.45") == (
        delivery["system"],
        delivery["record_key"],
        delivery["fields"]["amount"],
    )
    assert [] == (await api.get("/cases")).json()


async def test_the_billing_adapter_tells_a_new_line_from_a_repeated_key(billing: tuple[BillingService, str]) -> None:
    """The user's adapter says WRITTEN for billing's 201 and ALREADY_WRITTEN for its 200; billing keeps one line."""
    service, url = billing
    line = {"appointment_ref": "APT-9", "amount": "10.00"}

    async with BillingAdapter(url) as adapter:
        outcomes = [await adapter.write("appointment-to-billing/APT-9", line) for _ in range(2)]

    assert [WriteOutcome.WRITTEN, WriteOutcome.ALREADY_WRITTEN] == outcomes
    assert ({"appointment-to-billing/APT-9": line}, {"appointment-to-billing/APT-9": 2}) == (
        service.lines,
        dict(service.writes),
    )


async def test_check_and_the_worker_refuse_an_unregistered_lookup_with_the_same_finding(
    client: Client, tmp_path: Path
) -> None:
    """A look-up the app does not register: `readiness()` names it, and a worker for the app refuses with it."""
    on_duty = Lookup(check="scheduling.dentist_on_duty", field="appointment.dentist_id", reason="On duty that day.")
    contract = APPOINTMENT_TO_BILLING.model_copy(update={"rules": (*APPOINTMENT_TO_BILLING.rules, on_duty)})
    app = build_app(BillingAdapter("http://127.0.0.1:9"), contracts=(contract,))  # never written to

    readiness = app.readiness()

    assert [("unknown-lookup", HANDOFF, "scheduling.dentist_on_duty(appointment.dentist_id)")] == [
        (finding.kind.value, finding.contract, finding.subject) for finding in readiness.findings
    ]
    [finding] = readiness.findings
    said = f"{finding.contract}: [{finding.kind.value}] {finding.subject}: {finding.message}"

    with pytest.raises(AppNotReady) as by_kit:
        async with running_handoffs(client, app, tmp_path / "kit"):
            pytest.fail("the kit's worker started for an app that is not ready")
    ledger = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with pytest.raises(AppNotReady) as by_worker:
            Worker(client, task_queue=f"dental-{uuid.uuid4().hex[:8]}", plugins=[app.plugin(ledger=ledger)])
    finally:
        ledger.dispose()

    for refused in (by_kit.value, by_worker.value):
        assert readiness.findings == refused.readiness.findings
        assert said in str(refused)


def test_the_user_package_imports_only_handoffs_public_names() -> None:
    """tests/user_app reaches the engine through `from handoff import ...` alone, as a user's package must."""
    allowed = {"__future__", "pydantic", "httpx", *sys.stdlib_module_names}
    outside: list[str] = []
    for module in sorted(USER_PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(), filename=str(module))):
            if isinstance(node, ast.Import):
                imported = [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [(node.module, alias.name) for alias in node.names]
            else:
                continue
            for name, member in imported:
                root = name.split(".")[0]
                public = name == "handoff" and (member is None or member in handoff.__all__)
                own = name == "tests.user_app" or name.startswith("tests.user_app.")
                if not (public or own or (root in allowed and root != "handoff")):
                    outside.append(f"{module.name}:{node.lineno} {name}{'.' + member if member else ''}")
    assert [] == outside

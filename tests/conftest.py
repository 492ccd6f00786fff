"""Test-session plumbing shared by every test module."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from examples.restaurant import RestaurantApp, build_app
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests import postgres
from tests.ledgers import (  # noqa: F401  (fixtures for every test module)
    ledger,
    ledger_url,
    postgres_template,
    postgres_url,
    sqlite_template,
)

# pytest-xdist's workers set COLUMNS=80, and rich's consoles (the CLI's tables) fix their width from it when they are
# created: CLI tests would see wrapped tables under `make test` only. Their runner sets COLUMNS per command.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

SLA_SCALE = 1 / 1800
"""Scales contract SLAs for tests: reservation-to-pos's 30 minutes become one second."""

_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)
    survivors = _outliving_processes(session)
    if survivors:
        # Every test stops what it started, also when it fails: a survivor is a bug in a test or in a shutdown path.
        listed = "\n".join(f"  pid {p.pid}: {' '.join(p.cmdline())[:200]}" for p in survivors)
        sys.stderr.write(f"\nProcesses started by the test session are still alive (now killed):\n{listed}\n")
        for process in survivors:
            with contextlib.suppress(psutil.Error):
                process.kill()
        _exit_status = _exit_status or int(pytest.ExitCode.TESTS_FAILED)


def _outliving_processes(session: pytest.Session) -> list[psutil.Process]:
    """pytest's child processes still running, and daemons that run out of the session's directories."""
    me = psutil.Process()
    found = {p.pid: p for p in me.children(recursive=True) if _alive(p)}
    # A daemon (PostgreSQL's postmaster) is not our child once it detaches: find it by the directory it runs in.
    directories = [str(session.config._tmp_path_factory.getbasetemp()), *map(str, postgres.STARTED)]  # type: ignore[attr-defined]
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(process.info["cmdline"] or ())
            if process.pid != me.pid and any(d in cmdline for d in directories) and _alive(process):
                found[process.pid] = process
    return list(found.values())


def _alive(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return process.status() != psutil.STATUS_ZOMBIE
    return False


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave with `os._exit` once pytest has reported everything.

    The Temporal SDK's Rust core can abort the interpreter at exit (`PyGILState_Release`, exit 134) at random after
    a clean shutdown (sdk-python issue #300); skipping interpreter teardown keeps pytest's real status.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


@pytest.fixture(scope="session")
def temporal_env(handoff_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """The session's real dev server: the one Handoff's pytest plugin gives users (`handoff_env`)."""
    return handoff_env


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def restaurant(tmp_path: Path) -> Iterator[RestaurantApp]:
    """The example app (examples/restaurant) on systems of its own, which tests read to see what arrived."""
    app = build_app(f"sqlite:///{tmp_path / 'restaurant.db'}")
    try:
        yield app
    finally:
        app.systems.dispose()


@pytest.fixture
async def kit(client: Client, restaurant: RestaurantApp, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker for the restaurant app on a fresh task queue with its own ledger; SLAs scaled to about a second."""
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=SLA_SCALE) as running:
        yield running

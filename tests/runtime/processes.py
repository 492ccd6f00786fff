"""Real processes for durability tests: `handoff worker` and the embedded server, started and killed like in life."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client

from examples.restaurant.app import DATABASE_VARIABLE as RESTAURANT_DATABASE_VARIABLE
from examples.restaurant.systems import RestaurantSystems
from handoff.workers.testkit import TEST_DECISION_KEY

BIN = Path(sys.executable).parent
RESTAURANT_APP = "examples.restaurant:app"
RESTAURANT_DATABASE = "restaurant.db"
"""The restaurant's systems database of a `handoff` process, in its `HANDOFF_HOME` (examples/restaurant/app.py)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def handoff_env(home: Path, temporal_address: str, task_queue: str, **extra: str) -> dict[str, str]:
    """Environment for a `handoff` process: its own home (ledger, the restaurant's systems), this server, this task
    queue, the restaurant app (its systems in `home / RESTAURANT_DATABASE`), the test kit's decision key."""
    env = dict(os.environ)
    env.pop(RESTAURANT_DATABASE_VARIABLE, None)  # else the restaurant's systems would not be the ones under `home`
    env.update(
        HANDOFF_APP=RESTAURANT_APP,
        HANDOFF_HOME=str(home),
        HANDOFF_TEMPORAL_ADDRESS=temporal_address,
        HANDOFF_TASK_QUEUE=task_queue,
        HANDOFF_LOG_FORMAT="json",
        HANDOFF_GRACEFUL_SHUTDOWN_SECONDS="1",
        HANDOFF_DECISION_KEY=TEST_DECISION_KEY,
    )
    env.update({f"HANDOFF_{key.upper()}": value for key, value in extra.items()})
    return env


@contextmanager
def restaurant_systems(home: Path) -> Iterator[RestaurantSystems]:
    """The restaurant's systems of the `handoff` processes run with `home`: what their deliveries wrote."""
    systems = RestaurantSystems(f"sqlite:///{home / RESTAURANT_DATABASE}")
    try:
        yield systems
    finally:
        systems.dispose()


@contextmanager
def handoff_process(args: list[str], env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `handoff <args>` in a process group of its own; on exit, stop the whole group.

    SIGTERM first, so `handoff server` stops the Temporal server it runs; SIGKILL for whatever is left after 10 s
    (a test may already have killed the process itself, leaving its children).
    """
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(BIN / "handoff"), *args], env=dict(env), stdout=output, stderr=output, start_new_session=True
        )
    try:
        yield process
    finally:
        _signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=10)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


async def connect_when_healthy(address: str, timeout: float = 30, **options: Any) -> Client:
    """A client of the server that just started at `address`: it listens before its frontend is healthy ("Frontend is
    not healthy yet"), longer on a loaded machine, so connecting is tried again until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await Client.connect(address, **options)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)

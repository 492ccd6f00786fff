"""`handoff up`: the embedded Temporal server, a worker and the API for one app, in the foreground, to explore.

One process runs the worker and the API on its event loop and the Temporal server as a child; Ctrl-C or SIGTERM
stops all three, the API and the worker gracefully first, then the server. Ports and the data directory come from
the usual settings (`HANDOFF_HOME`, `HANDOFF_SERVER_PORT`, `HANDOFF_SERVER_UI_PORT`, `HANDOFF_API_PORT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator

import structlog
import uvicorn
from temporalio.client import Client

from handoff.workers.api import create_app
from handoff.workers.api.protocol import HTTP_PROTOCOL
from handoff.workers.app import Handoffs
from handoff.workers.client import connect
from handoff.workers.links import INBOX_PATH
from handoff.workers.server import server_command
from handoff.workers.settings import Settings
from handoff.workers.worker import build_worker, open_ledger

log = structlog.get_logger(__name__)

SERVER_START_SECONDS = 60


class _ApiServer(uvicorn.Server):
    """uvicorn, without its own signal handling: `up` decides when everything stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def up(settings: Settings, app: Handoffs, *, announce: Callable[[str], None]) -> None:
    """Run the stack until SIGINT or SIGTERM; `announce` receives the lines a person reads (the addresses)."""
    app.raise_unless_ready()
    settings = settings.model_copy(update={"temporal_address": f"127.0.0.1:{settings.server_port}"})
    listener = _api_listener(settings)  # before anything starts: a taken port is said at once, and nothing leaks
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = subprocess.Popen(server_command(settings), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    ledger = open_ledger(settings)
    try:
        await _wait_for_port(settings.server_port, server)
        client = await _connect_when_ready(settings, server)
        api = _ApiServer(
            uvicorn.Config(
                create_app(settings, app, client=client, ledger=ledger),
                host=settings.api_host,
                port=settings.api_port,
                log_config=None,
                http=HTTP_PROTOCOL,  # a request HTTP cannot read gets the API's JSON error, as with `handoff api`
                timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
            )
        )
        async with build_worker(client, settings, app, ledger=ledger):
            serving = asyncio.create_task(api.serve(sockets=[listener]))
            while not api.started and not serving.done():
                await asyncio.sleep(0.05)
            if serving.done():
                serving.result()
                raise RuntimeError("the API stopped as it started")
            base = f"http://{settings.api_host}:{settings.api_port}"
            announce(f"API            {base}")
            announce(f"OpenAPI docs   {base}/docs")
            announce(
                f"Inbox          {base}{INBOX_PATH}   (sign in with an operator's token: "
                "`handoff operators add NAME --group GROUP`)"
            )
            if settings.server_ui:
                announce(f"Temporal UI    http://127.0.0.1:{settings.server_ui_port}")
            announce(f"Temporal gRPC  127.0.0.1:{settings.server_port}   (data in {settings.home})")
            announce(f"Handoffs       {', '.join(c.name for c in app.catalog.contracts)}   (Ctrl-C stops everything)")
            log.info("up.started", handoffs=[c.name for c in app.catalog.contracts])
            await stop.wait()
            log.info("up.stopping")
            api.should_exit = True
            await serving
    finally:
        listener.close()
        ledger.dispose()
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.info("up.stopped")


def _api_listener(settings: Settings) -> socket.socket:
    """The API's listening socket, made here so a port in use gives a clear error. Explicitly TCP (not protocol 0):
    asyncio turns Nagle's algorithm off (TCP_NODELAY) only on connections of a socket that says it is TCP, and with it
    on, every answer after a connection's first waits about 40 ms for the client's delayed ACK."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((settings.api_host, settings.api_port))
    except OSError as error:
        listener.close()
        raise RuntimeError(
            f"the API cannot listen on {settings.api_host}:{settings.api_port} ({error.strerror}): "
            "set HANDOFF_API_PORT to a free port"
        ) from None
    return listener


async def _connect_when_ready(settings: Settings, server: subprocess.Popen[bytes]) -> Client:
    """A client, once the server that just started answers: it listens before its frontend is healthy, and a loaded
    machine ("Frontend is not healthy yet") may take seconds more."""
    deadline = asyncio.get_running_loop().time() + SERVER_START_SECONDS
    while True:
        try:
            return await connect(settings)
        except RuntimeError:
            if server.poll() is not None or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = asyncio.get_running_loop().time() + SERVER_START_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Temporal server exited with {server.returncode} (is port {port} in use?)")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the Temporal server did not listen on 127.0.0.1:{port} within {SERVER_START_SECONDS}s")

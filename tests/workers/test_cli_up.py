"""`handoff up --app`: the embedded server, a worker and the API in the foreground, stopped together on a signal."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.runtime import payloads
from tests.runtime.processes import BIN, RESTAURANT_APP, free_port

ROOT = Path(__file__).resolve().parents[2]


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    """stdout up to the line holding `marker` (the addresses are printed once everything is up)."""
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"`handoff up` did not print {marker!r} (exit {process.poll()}):\n{seen}")


def _post(url: str, body: object, token: str) -> dict[str, object]:
    headers = {"content-type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_up_serves_the_app_then_stops_everything_on_a_signal(tmp_path: Path, signum: signal.Signals) -> None:
    grpc, ui, api = free_port(), free_port(), free_port()
    env = {
        "PATH": str(BIN),
        "HANDOFF_APP": RESTAURANT_APP,
        "HANDOFF_HOME": str(tmp_path),
        "HANDOFF_SERVER_PORT": str(grpc),
        "HANDOFF_SERVER_UI_PORT": str(ui),
        "HANDOFF_API_PORT": str(api),
        "HANDOFF_LOG_FORMAT": "json",
        "HANDOFF_LOG_LEVEL": "WARNING",
        "HANDOFF_GRACEFUL_SHUTDOWN_SECONDS": "2",
        "COLUMNS": "200",
    }
    source = subprocess.run(
        [str(BIN / "handoff"), "operators", "add", "till", "--role", "source", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert 0 == source.returncode, source.stderr
    token = json.loads(source.stdout)["token"]
    up = subprocess.Popen(
        [str(BIN / "handoff"), "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        printed = _read_until(up, "Ctrl-C stops everything")
        children = psutil.Process(up.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
        accepted = _post(f"http://127.0.0.1:{api}/events/order.placed", payloads.order(), token)
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/healthz", timeout=30) as health:
            healthy = health.status

        up.send_signal(signum)
        code = up.wait(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()

    assert f"http://127.0.0.1:{api}/docs" in printed
    assert f"http://127.0.0.1:{ui}" in printed
    assert 200 == healthy
    assert str(accepted["workflow_id"]).startswith("order-to-kitchen/")
    assert any("temporal server start-dev" in command for command in commands)
    assert 0 == code
    assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]


def test_up_refuses_to_start_without_an_app(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "handoff"), "up"],
        cwd=tmp_path,
        env={"PATH": str(BIN), "HANDOFF_HOME": str(tmp_path), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert 2 == result.returncode
    assert "no app given" in result.stderr


@pytest.mark.slow
def test_up_says_so_when_the_api_port_is_taken_and_stops_the_server(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "PATH": str(BIN),
            "HANDOFF_APP": RESTAURANT_APP,
            "HANDOFF_HOME": str(tmp_path),
            "HANDOFF_SERVER_PORT": str(free_port()),
            "HANDOFF_SERVER_UI": "false",
            "HANDOFF_API_PORT": str(port),
            "HANDOFF_LOG_LEVEL": "WARNING",
            "COLUMNS": "200",
        }
        result = subprocess.run(
            [str(BIN / "handoff"), "up"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )

    assert 1 == result.returncode, result.stdout + result.stderr
    assert f"the API cannot listen on 127.0.0.1:{port}" in " ".join(result.stderr.split())


def test_the_api_listener_is_tcp_so_its_connections_answer_without_nagle_delays(tmp_path: Path) -> None:
    """asyncio sets TCP_NODELAY on an accepted connection only if its listening socket says IPPROTO_TCP; otherwise
    each answer after a connection's first waits about 40 ms for a delayed ACK (measured: 44 ms a request, 1 ms)."""
    from handoff.workers.settings import Settings
    from handoff.workers.up import _api_listener

    listener = _api_listener(Settings(home=tmp_path, api_host="127.0.0.1", api_port=free_port()))
    try:
        assert (socket.SOCK_STREAM, socket.IPPROTO_TCP) == (listener.type, listener.proto)
    finally:
        listener.close()

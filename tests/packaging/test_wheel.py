"""The wheel as a user installs it: one top-level package, `handoff`, beside the user's own `workflows/` and
`schemas/`; `handoff check` on a user's app; the pytest plugin's fixtures and its advice when no app is named."""

from __future__ import annotations

import json
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.packaging.conftest import UserVenv

pytestmark = pytest.mark.slow

USER_FILES = {
    "schemas/__init__.py": '''
        """The user's own schemas package, which Handoff's must not shadow."""
        from pydantic import BaseModel

        MARKER = "the user's schemas"


        class Order(BaseModel):
            id: str
            total: int | None = None


        class OrderPlaced(BaseModel):
            order: Order
    ''',
    "workflows/__init__.py": '''
        """The user's own workflows package."""
        MARKER = "the user's workflows"
    ''',
    "userpkg/__init__.py": '''
        """A small user app whose payload model comes from the user's own `schemas` package."""
        from handoff import (
            ExceptionPolicy, DecisionKind, Gain, HandoffContract, Handoffs, Measure, OperatorGroup, Required, Sync,
            SyncTarget, Trigger, WriteOutcome,
        )
        from schemas import OrderPlaced


        class Ledger:
            def write(self, record_key, fields):
                return WriteOutcome.WRITTEN


        app = Handoffs(groups=[OperatorGroup(name="clerks")])
        app.source("shop")
        app.system("accounts", Ledger())
        app.add(
            HandoffContract(
                name="order-to-accounts",
                trigger=Trigger(event="order.placed", payload=OrderPlaced, dedupe_key="order.id"),
                source_of_truth={"order": "shop"},
                sync=Sync(targets=(SyncTarget(system="accounts", fields=("order.id", "order.total")),)),
                rules=(Required(field="order.total", reason="Accounts books the total."),),
                exceptions=ExceptionPolicy(owner="clerks", on_timeout=DecisionKind.REJECT),
                gain=Gain(metric="Time to booked", unit="seconds", measure=Measure.CYCLE_TIME, baseline=600, target=5),
            )
        )
    ''',
}

PROBE = """
import json, sys
import schemas, workflows
from handoff import Handoffs
import handoff.schemas, handoff.workflows, handoff.workflows.readiness
print(json.dumps({
    "schemas": [schemas.MARKER, schemas.__file__],
    "workflows": [workflows.MARKER, workflows.__file__],
    "still_theirs": sys.modules["schemas"] is schemas and sys.modules["workflows"] is workflows,
    "handoff": [handoff.schemas.__file__, handoff.workflows.__file__, Handoffs.__module__],
}))
"""


def write_user_project(folder: Path) -> None:
    for name, text in USER_FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def test_the_wheel_claims_only_the_handoff_name(user_venv: UserVenv) -> None:
    """Nothing but `handoff/` at the wheel's top level; the templates and the pytest entry point ship with it."""
    with zipfile.ZipFile(user_venv.wheel) as wheel:
        names = wheel.namelist()
        entry_points = next(wheel.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    top_level = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}

    assert {"handoff"} == top_level
    assert "handoff/workers/scaffold_templates/pyproject.toml.tmpl" in names
    assert "handoff = handoff.workers.pytest_plugin" in entry_points.split("[pytest11]", 1)[1]


def test_the_users_workflows_and_schemas_live_beside_handoff(user_venv: UserVenv, workspace: Path) -> None:
    """A user's own `workflows` and `schemas` packages import as theirs in the same process as Handoff's engine."""
    write_user_project(workspace)

    probe = user_venv.run("python", "-c", PROBE, cwd=workspace)

    assert 0 == probe.code, probe.explain()
    found = json.loads(probe.stdout)
    assert ["the user's schemas", str(workspace / "schemas" / "__init__.py")] == found["schemas"]
    assert ["the user's workflows", str(workspace / "workflows" / "__init__.py")] == found["workflows"]
    assert found["still_theirs"]
    site_packages = str(user_venv.root)
    assert [True, True, "handoff.workers.app"] == [
        found["handoff"][0].startswith(site_packages),
        found["handoff"][1].startswith(site_packages),
        found["handoff"][2],
    ]


def test_handoff_check_reads_a_users_app(user_venv: UserVenv, workspace: Path) -> None:
    """The installed `handoff check --app userpkg:app` says READY and exits 0 on a user's app."""
    write_user_project(workspace)

    checked = user_venv.run("handoff", "check", "--app", "userpkg:app", cwd=workspace)

    assert (0, True, False) == (checked.code, "READY" in checked.stdout, "NOT READY" in checked.stdout), (
        checked.explain()
    )


def test_the_plugin_names_both_ways_to_give_the_app(user_venv: UserVenv, workspace: Path) -> None:
    """Without `handoff_app` (ini) or HANDOFF_APP, a test using handoff_kit fails with advice, before any server."""
    (workspace / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nasyncio_mode = "auto"\nasyncio_default_fixture_loop_scope = "session"\n'
        'asyncio_default_test_loop_scope = "session"\n'
    )
    (workspace / "test_kit.py").write_text("async def test_kit(handoff_kit):\n    pass\n")

    ran = user_venv.run("pytest", "-q", "-p", "no:cacheprovider", cwd=workspace)

    assert 1 == ran.code, ran.explain()
    assert "handoff_app" in ran.stdout and "HANDOFF_APP" in ran.stdout, ran.explain()

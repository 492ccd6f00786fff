"""`handoff check`, run as a user runs it: the verdict per handoff, the JSON form, and the exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handoff.schemas.contract import Catalog, ExceptionPolicy, HandoffContract, OperatorGroup
from handoff.schemas.rules import Max, Min
from handoff.workers.cli.app import app
from handoff.workflows.catalog import CATALOG
from handoff.workflows.catalog import reservation_to_pos as reservation

REPO = Path(__file__).resolve().parents[2]

BROKEN = Catalog(
    groups=(OperatorGroup(name="front-of-house"), OperatorGroup(name="restaurant-managers")),
    contracts=(
        reservation.CONTRACT,
        HandoffContract(
            name="half-written",
            trigger=reservation.CONTRACT.trigger,
            source_of_truth={"reservation": "booking", "guest": "booking"},
            sync=reservation.CONTRACT.sync,
            rules=(
                Min(field="reservation.party_size", value=10, reason="Big parties only."),
                Max(field="reservation.party_size", value=5, reason="Small parties only."),
            ),
            exceptions=ExceptionPolicy(owner="front-of-house"),
        ),
    ),
)
"""One READY handoff and one that leaves two questions open and contradicts itself."""

NOT_A_CATALOG = "not a catalog"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args])
    return result.exit_code, result.output


def test_check_says_every_catalog_handoff_is_ready() -> None:
    """The shipped catalog: each handoff is printed READY, and the exit status is 0."""
    code, output = run()

    assert 0 == code, output
    for contract in CATALOG.contracts:
        assert any(contract.name in line and "READY" in line for line in output.splitlines()), output
    assert "NOT READY" not in output
    assert "3 of 3 handoffs READY." in output


def test_check_json_has_one_entry_per_handoff() -> None:
    """--json prints valid JSON: name, version, content hash, verdict and findings for each handoff."""
    code, output = run("--json")

    expected = [
        {"name": c.name, "version": c.version, "content_hash": c.content_hash(), "ready": True, "findings": []}
        for c in CATALOG.contracts
    ]
    assert (0, expected) == (code, json.loads(output))


def test_check_json_on_a_broken_catalog_exits_1() -> None:
    """A catalog with a handoff that is not ready exits 1, and the JSON lists that handoff's findings."""
    code, output = run("--json", "--catalog", f"{__name__}:BROKEN")

    entries = json.loads(output)
    expected = [
        ("reservation-to-pos", True, []),
        (
            "half-written",
            False,
            [
                ("no-timeout-decision", "exceptions.on_timeout"),
                ("no-gain-target", "gain"),
                ("contradictory-rules", "reservation.party_size >= 10 / reservation.party_size <= 5"),
            ],
        ),
    ]
    actual = [
        (entry["name"], entry["ready"], [(f["kind"], f["subject"]) for f in entry["findings"]]) for entry in entries
    ]
    assert (1, expected) == (code, actual)
    assert all(f["contract"] == "half-written" and f["message"] for f in entries[1]["findings"])


def test_check_text_on_a_broken_catalog_names_each_finding() -> None:
    """The readable form marks the handoff NOT READY and shows each finding's kind, subject and message."""
    code, output = run("--catalog", f"{__name__}:BROKEN")

    assert 1 == code
    assert "half-written" in output and "NOT READY (3 findings)" in output
    for text in ("no-timeout-decision", "exceptions.on_timeout", "no-gain-target", "contradictory-rules"):
        assert text in output
    assert "1 of 2 handoffs NOT READY" in output


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("workflows.catalog", "expected MODULE:ATTR"),
        ("no.such.module:CATALOG", "cannot import"),
        (f"{__name__}:NOT_A_CATALOG", "not a Catalog"),
    ],
)
def test_check_refuses_a_catalog_it_cannot_load(spec: str, complaint: str) -> None:
    """A --catalog that names no Catalog is a usage error (exit 2) that says what was wrong."""
    code, output = run("--catalog", spec)

    assert 2 == code
    assert complaint in " ".join(output.split())  # the error box wraps long lines


@pytest.mark.slow
def test_handoff_check_console_script() -> None:
    """The installed `handoff check` command exits 0 on the shipped catalog and 1 on a broken one."""
    script = Path(sys.executable).with_name("handoff")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    ready = subprocess.run([script, "check"], capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    broken = subprocess.run(
        [script, "check", "--json", "--catalog", "tests.workers.test_cli_check:BROKEN"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )

    assert (0, 1) == (ready.returncode, broken.returncode), ready.stderr + broken.stderr
    assert "3 of 3 handoffs READY." in ready.stdout
    assert ["reservation-to-pos", "half-written"] == [entry["name"] for entry in json.loads(broken.stdout)]

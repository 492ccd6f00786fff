"""`handoff check --app`, run as a user runs it: the verdict per handoff, the JSON form, and the exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from examples.restaurant import app as restaurant
from examples.restaurant import reservation_to_pos as reservation
from handoff import ExceptionPolicy, HandoffContract, Handoffs, Max, Min, OperatorGroup
from handoff.workers.cli import commands

app = commands("check")

REPO = Path(__file__).resolve().parents[2]
RESTAURANT = "examples.restaurant:app"
HANDOFFS = len(restaurant.catalog.contracts)


class _Pos:
    def write(self, record_key: str, fields: object) -> str:
        raise AssertionError("never delivered: `handoff check` runs nothing")


BROKEN = Handoffs(
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
BROKEN.source("booking")
BROKEN.system("pos", _Pos())  # type: ignore[arg-type]
BROKEN.lookup("pos.table_exists")(lambda value: True)

UNREGISTERED = Handoffs(groups=restaurant.catalog.groups, contracts=(reservation.CONTRACT,))
"""The reservation handoff in an app that registers none of the systems and look-ups it names."""

NOT_AN_APP = "not an app"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", *args], env=env)
    return result.exit_code, result.output


def test_check_says_every_handoff_of_the_app_is_ready() -> None:
    """The restaurant app: each handoff is printed READY, and the exit status is 0."""
    code, output = run("--app", RESTAURANT)

    assert 0 == code, output
    for contract in restaurant.catalog.contracts:
        assert any(contract.name in line and "READY" in line for line in output.splitlines()), output
    assert "NOT READY" not in output
    assert f"{HANDOFFS} of {HANDOFFS} handoffs READY." in output


def test_the_app_may_come_from_handoff_app() -> None:
    """HANDOFF_APP names the app when --app is not given."""
    code, output = run(env={"HANDOFF_APP": f"{__name__}:BROKEN"})

    assert 1 == code
    assert "half-written" in output


def test_check_json_has_one_entry_per_handoff() -> None:
    """--json prints valid JSON: name, version, content hash, verdict and findings for each handoff."""
    code, output = run("--json", "--app", RESTAURANT)

    expected = [
        {"name": c.name, "version": c.version, "content_hash": c.content_hash(), "ready": True, "findings": []}
        for c in restaurant.catalog.contracts
    ]
    assert (0, expected) == (code, json.loads(output))


def test_check_judges_names_against_what_the_app_registers() -> None:
    """Look-ups and systems the app does not register are findings: the same gate the worker runs."""
    code, output = run("--json", "--app", f"{__name__}:UNREGISTERED")

    findings = {(f["kind"], f["subject"]) for f in json.loads(output)[0]["findings"]}
    assert 1 == code
    assert {("unknown-lookup", "pos.table_exists(reservation.table_number)"), ("unknown-system", "pos")} <= findings


def test_check_json_on_a_broken_app_exits_1() -> None:
    """An app with a handoff that is not ready exits 1, and the JSON lists that handoff's findings."""
    code, output = run("--json", "--app", f"{__name__}:BROKEN")

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


def test_check_text_on_a_broken_app_names_each_finding() -> None:
    """The readable form marks the handoff NOT READY and shows each finding's kind, subject and message."""
    code, output = run("--app", f"{__name__}:BROKEN")

    assert 1 == code
    assert "half-written" in output and "NOT READY (3 findings)" in output
    for text in ("no-timeout-decision", "exceptions.on_timeout", "no-gain-target", "contradictory-rules"):
        assert text in output
    assert "1 of 2 handoffs NOT READY" in output


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("examples.restaurant", "expected MODULE:ATTRIBUTE"),
        ("no.such.module:app", "cannot import"),
        (f"{__name__}:NOT_AN_APP", "is a str, not a handoff.Handoffs"),
        (f"{__name__}:NOTHING_HERE", "is nothing, not a handoff.Handoffs"),
        ("", "no app given: pass --app"),
    ],
)
def test_check_refuses_an_app_it_cannot_load(spec: str, complaint: str) -> None:
    """An --app that names no Handoffs is a usage error (exit 2) that says what was wrong."""
    code, output = run("--app", spec, env={"HANDOFF_APP": "", "COLUMNS": "400"})

    assert 2 == code
    assert complaint in " ".join(output.split())  # the error box wraps long lines


@pytest.mark.slow
def test_handoff_check_console_script() -> None:
    """The installed `handoff check` imports the app from the current directory: exit 0 when ready, 1 when not."""
    script = Path(sys.executable).with_name("handoff")
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HANDOFF_APP")}

    ready = subprocess.run(
        [script, "check", "--app", RESTAURANT], capture_output=True, text=True, cwd=REPO, env=env, timeout=60
    )
    broken = subprocess.run(
        [script, "check", "--json", "--app", "tests.workers.test_cli_check:BROKEN"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )

    assert (0, 1) == (ready.returncode, broken.returncode), ready.stderr + broken.stderr
    assert f"{HANDOFFS} of {HANDOFFS} handoffs READY." in ready.stdout
    assert ["reservation-to-pos", "half-written"] == [entry["name"] for entry in json.loads(broken.stdout)]

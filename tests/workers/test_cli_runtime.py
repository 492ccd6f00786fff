"""`handoff trigger` as a user runs it: a good payload starts a run, a bad one starts nothing and says why."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.runtime import payloads
from tests.runtime.processes import BIN, handoff_env


def run_trigger(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "handoff"), "trigger", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


async def _started(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except Exception:
        return False
    return True


async def test_trigger_starts_a_run_and_prints_its_id(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A valid payload file starts the run; the id is printed; --json gives the whole answer; stdin works too."""
    env = handoff_env(tmp_path, temporal_env.client.service_client.config.target_host, f"cli-{uuid.uuid4().hex[:8]}")
    body = payloads.reservation()
    (tmp_path / "event.json").write_text(json.dumps(body))

    printed = run_trigger(env, "reservation.confirmed", "--payload", str(tmp_path / "event.json"))
    again = run_trigger(env, "reservation.confirmed", "--payload", "-", "--json", stdin=json.dumps(body))

    workflow_id = f"reservation-to-pos/{body['reservation']['id']}"
    assert (0, workflow_id) == (printed.returncode, printed.stdout.strip())
    assert 0 == again.returncode
    assert (workflow_id, True) == (json.loads(again.stdout)["workflow_id"], json.loads(again.stdout)["duplicate"])
    assert await _started(temporal_env.client, workflow_id)


async def test_an_invalid_payload_names_each_field_and_starts_nothing(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Wrong types exit 2 with one line per field error, and no run exists afterwards."""
    env = handoff_env(tmp_path, temporal_env.client.service_client.config.target_host, "cli-invalid")
    body = payloads.reservation(reservation__party_size="four", reservation__starts_at="soon")

    result = run_trigger(env, "reservation.confirmed", "--payload", "-", stdin=json.dumps(body))

    assert 2 == result.returncode
    assert "reservation.party_size" in result.stderr
    assert "reservation.starts_at" in result.stderr
    assert "nothing was started" in result.stderr
    assert not await _started(temporal_env.client, f"reservation-to-pos/{body['reservation']['id']}")


def test_malformed_json_unknown_event_and_missing_file_are_refused(tmp_path: Path) -> None:
    """Each bad input exits 2 with a message naming the problem (no server is needed to refuse them)."""
    env = handoff_env(tmp_path, "127.0.0.1:1", "cli-bad")

    malformed = run_trigger(env, "reservation.confirmed", "--payload", "-", stdin="{not json")
    not_object = run_trigger(env, "reservation.confirmed", "--payload", "-", stdin="[1, 2]")
    missing = run_trigger(env, "reservation.confirmed", "--payload", str(tmp_path / "nope.json"))

    assert (2, 2, 2) == (malformed.returncode, not_object.returncode, missing.returncode)
    assert "not valid JSON" in malformed.stderr
    assert "must be a JSON object" in not_object.stderr
    assert "Cannot read the payload file" in missing.stderr


async def test_an_unknown_event_lists_the_known_ones(temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """An event no contract is triggered by exits 2 and names the events that exist."""
    env = handoff_env(tmp_path, temporal_env.client.service_client.config.target_host, "cli-unknown")

    result = run_trigger(env, "reservation.cancelled", "--payload", "-", stdin="{}")

    assert 2 == result.returncode
    assert "reservation.confirmed" in result.stderr

"""`handoff replay-check`, run as CI runs it: saved histories from a folder, or a handoff's recent runs fetched from a
real dev server, replayed on the current code; exit 0 when all replay, 1 naming the runs that would break, 2 for bad
input."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from handoff.schemas.activities import DELIVER
from handoff.workers.cli import replay_check  # noqa: F401  (importing it registers the command)
from handoff.workers.testkit import HandoffKit
from tests.runtime import payloads
from tests.workers.cli_runner import cli_env, handoff

HISTORIES = Path(__file__).parent.parent / "histories"
REPO = Path(__file__).parent.parent.parent


def folder_env(tmp_path: Path) -> dict[str, str]:
    """The restaurant app, with its home (and systems database) under the test's folder; no server needed."""
    return {
        "HANDOFF_APP": "examples.restaurant:app",
        "HANDOFF_HOME": str(tmp_path),
        "HANDOFF_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }


def recorded_handoffs() -> Counter[str]:
    """How many saved histories each handoff has in tests/histories, read from their start events."""
    return Counter(
        json.loads(path.read_text())["events"][0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        for path in HISTORIES.glob("*.json")
    )


def lines(output: str) -> list[str]:
    """The report's lines with their spacing (the column padding) collapsed."""
    return [" ".join(line.split()) for line in output.splitlines()]


def tampered(path: Path) -> str:
    """The history with its delivery scheduled as another activity: a path the current code does not take."""
    recorded = json.loads(path.read_text())
    for event in recorded["events"]:
        scheduled = event.get("activityTaskScheduledEventAttributes", {}).get("activityType", {})
        if scheduled.get("name") == DELIVER:
            scheduled["name"] = "deliver_by_fax"
    return json.dumps(recorded)


async def test_saved_histories_all_replay_and_the_check_exits_0(tmp_path: Path) -> None:
    """Every history in tests/histories replays on today's code; the counts per handoff are the folder's."""
    as_json = await handoff(folder_env(tmp_path), "replay-check", "--histories", str(HISTORIES), "--json")
    text = await handoff(folder_env(tmp_path), "replay-check", "--histories", str(HISTORIES))
    one = await handoff(
        folder_env(tmp_path), "replay-check", "--histories", str(HISTORIES), "--handoff", "lead-to-invoice"
    )

    assert (0, 0, 0) == (as_json.exit_code, text.exit_code, one.exit_code), as_json.output
    check = json.loads(as_json.stdout)
    assert (sum(recorded_handoffs().values()), 0) == (check["replayed"], check["failed"])
    assert {name: (count, 0) for name, count in recorded_handoffs().items()} == {
        line["handoff"]: (line["replayed"], line["failed"]) for line in check["handoffs"]
    }
    assert f"lead-to-invoice replayed {recorded_handoffs()['lead-to-invoice']}, failed 0" in lines(text.stdout)
    assert "Every history replayed" in text.stdout
    assert ["lead-to-invoice"] == [line.split()[0] for line in one.stdout.splitlines() if "replayed " in line]


async def test_a_tampered_history_fails_the_check_with_exit_1_and_is_named(tmp_path: Path) -> None:
    """A history whose delivery was another activity no longer matches the code: exit 1, its id and error shown."""
    delivered = HISTORIES / "reservation-to-pos-delivered.json"
    folder = tmp_path / "histories"
    folder.mkdir()
    (folder / "reservation-to-pos-good.json").write_text(delivered.read_text())
    (folder / "reservation-to-pos-by-fax.json").write_text(tampered(delivered))

    text = await handoff(folder_env(tmp_path), "replay-check", "--histories", str(folder))
    as_json = await handoff(folder_env(tmp_path), "replay-check", "--histories", str(folder), "--json")

    assert (1, 1) == (text.exit_code, as_json.exit_code), text.output
    assert "reservation-to-pos replayed 2, failed 1" in lines(text.stdout)
    failure_line = next(line for line in text.stdout.splitlines() if "reservation-to-pos-by-fax:" in line)
    assert "NondeterminismError" in failure_line and "deliver_by_fax" in failure_line
    assert "1 of 2 failed to replay" in text.stdout
    line = next(line for line in json.loads(as_json.stdout)["handoffs"] if line["handoff"] == "reservation-to-pos")
    assert (2, 1, ["reservation-to-pos-by-fax"]) == (
        line["replayed"],
        line["failed"],
        [failure["workflow_id"] for failure in line["failures"]],
    )


@pytest.mark.slow
def test_json_on_stdout_stays_parseable_when_a_replay_fails(tmp_path: Path) -> None:
    """In a real process, the SDK core's warning about the failed replay does not land in the JSON on stdout."""
    delivered = HISTORIES / "reservation-to-pos-delivered.json"
    (tmp_path / "reservation-to-pos-by-fax.json").write_text(tampered(delivered))
    command = "from handoff.workers.cli import main; main()"  # as the console script runs it
    env = {**os.environ, **folder_env(tmp_path)}

    result = subprocess.run(
        [sys.executable, "-c", command, "replay-check", "--histories", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )

    assert 1 == result.returncode, result.stderr
    assert (1, 1) == (json.loads(result.stdout)["replayed"], json.loads(result.stdout)["failed"])


async def test_the_recent_runs_of_each_handoff_are_fetched_from_temporal_and_replayed(
    kit: HandoffKit, client: Client, temporal_env: WorkflowEnvironment
) -> None:
    """Runs of the kit's worker, listed by handoff on its task queue, replay: counts per handoff, --limit, --since."""
    sent = [
        await kit.send("reservation.confirmed", payloads.reservation()),
        await kit.send("reservation.confirmed", payloads.reservation()),
        await kit.send("deal.won", payloads.deal()),
        await kit.send("order.placed", payloads.order()),
    ]
    for accepted in sent:
        await kit.result(accepted.workflow_id)
    await _listed(client, f'TaskQueue = "{kit.settings.task_queue}"', len(sent))
    env = cli_env(kit, temporal_env.client.service_client.config.target_host)
    scope = ("--task-queue", kit.settings.task_queue, "--json")

    everything = await handoff(env, "replay-check", *scope)
    newest = await handoff(env, "replay-check", *scope, "--limit", "1", "--handoff", "reservation-to-pos")
    recent = await handoff(env, "replay-check", *scope, "--since", "1h")

    assert (0, 0, 0) == (everything.exit_code, newest.exit_code, recent.exit_code), everything.output
    expected = {"reservation-to-pos": (2, 0), "lead-to-invoice": (1, 0), "order-to-kitchen": (1, 0)}
    for result in (everything, recent):
        check = json.loads(result.stdout)
        assert expected == {line["handoff"]: (line["replayed"], line["failed"]) for line in check["handoffs"]}
    assert [("reservation-to-pos", 1)] == [
        (line["handoff"], line["replayed"]) for line in json.loads(newest.stdout)["handoffs"]
    ]
    assert json.loads(everything.stdout)["source"].startswith("Temporal at ")


async def test_bad_input_exits_2_and_says_what_was_wrong(tmp_path: Path) -> None:
    """An unknown handoff, a missing folder, a folder without JSON and a malformed --since are usage errors."""
    (tmp_path / "notes.txt").write_text("not a history")
    env = folder_env(tmp_path)

    unknown = await handoff(env, "replay-check", "--histories", str(HISTORIES), "--handoff", "payroll")
    missing = await handoff(env, "replay-check", "--histories", str(tmp_path / "nowhere"))
    empty = await handoff(env, "replay-check", "--histories", str(tmp_path))
    since = await handoff(env, "replay-check", "--since", "a week")

    assert (2, 2, 2, 2) == (unknown.exit_code, missing.exit_code, empty.exit_code, since.exit_code)
    assert "no handoff 'payroll'" in unknown.stderr and "reservation-to-pos" in unknown.stderr
    assert "no such folder" in missing.stderr
    assert "no .json file" in empty.stderr
    assert "'a week' is not an age" in since.stderr


async def _listed(client: Client, query: str, count: int, timeout: float = 15) -> None:
    """Wait until Temporal's visibility lists `count` runs for `query` (it trails the runs by about a second)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (await client.count_workflows(query)).count < count:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"visibility did not list {count} runs for {query!r} within {timeout}s")
        await asyncio.sleep(0.1)

"""`make demo` as a newcomer runs it: real server, worker and API processes for the restaurant app, end to end,
then everything stopped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_runs_end_to_end_and_stops_what_it_started(tmp_path: Path) -> None:
    """The demo sends the events, decides every case, prints the report and exits 0 with its processes stopped."""
    result = subprocess.run(
        [sys.executable, "-m", "examples.restaurant.demo", "--home", str(tmp_path / "demo")],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "160"},
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert 0 == result.returncode, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "48 events accepted (202)" in out
    assert "duplicate: true" in out
    assert "403" in out  # the non-owner's attempt, refused
    assert re.search(r"48 runs: \d+ delivered, \d+ rejected", out)
    assert "Report" in out and "reservation-to-pos" in out
    assert 3 == len(re.findall(r"stopped (server|worker|api)", out))
    assert "handoff up --app examples.restaurant:app" in out  # how to keep exploring, not addresses of dead processes
    assert "/inbox" in out and "handoff operators add YOU --group front-of-house" in out  # and how to open the inbox
    assert "http://127.0.0.1" not in out
    pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
    assert 3 == len(pids)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()

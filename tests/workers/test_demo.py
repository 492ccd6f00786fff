"""`make demo` as a newcomer runs it: real server, worker and API processes, end to end, then everything stopped."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.runtime.processes import BIN


def test_the_demo_runs_end_to_end_and_stops_what_it_started(tmp_path: Path) -> None:
    """The demo sends the events, decides every case, prints the report and exits 0 with its processes stopped."""
    result = subprocess.run(
        [str(BIN / "handoff"), "demo", "--home", str(tmp_path / "demo")],
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
    pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
    assert 3 == len(pids)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()

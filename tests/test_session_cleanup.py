"""The suite's own guard: a process a test leaves running fails the session (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LEAKING_TEST = """
import subprocess

def test_starts_a_process_and_forgets_it():
    subprocess.Popen(["sleep", "60"])
"""


def test_a_process_left_running_fails_the_session(tmp_path: Path) -> None:
    (tmp_path / "test_leak.py").write_text(LEAKING_TEST)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "temp"),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr
    assert "still alive (now killed)" in result.stderr
    assert "sleep 60" in result.stderr
    assert 1 == result.returncode, result.stderr

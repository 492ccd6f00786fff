"""Handoff as a user gets it: the wheel built from this tree, installed in a fresh venv outside the repo.

Once per session, in the background from the moment the session knows it needs it (venv_build.py builds it): the
wheel is built from a snapshot of the files it is made of, and a venv is created and given the wheel with its
dependencies, pytest and pytest-asyncio, from PyPI. Every command runs in a process group of its own with a clean
environment, and the group is stopped when the command ends, so nothing a test starts outlives it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
PIP_TIMEOUT = 300.0
COMMAND_TIMEOUT = 180.0


@dataclass(frozen=True)
class Finished:
    """A command that ran to its end."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def explain(self) -> str:
        return f"$ {' '.join(self.args)}\nexit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run(args: Sequence[str | Path], *, cwd: Path, env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT) -> Finished:
    """Run a command to its end in a process group of its own; kill the group if it overruns or leaves anything.

    A test's command may start processes of its own (pytest starts a Temporal dev server): whatever of the group is
    still alive once the command ends is killed, and the test fails, because a user's run would have left it too.
    """
    return finish(start(args, cwd=cwd, env=env), timeout=timeout)


def start(args: Sequence[str | Path], *, cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start a command in a process group of its own, its output captured; `finish` waits for it."""
    return subprocess.Popen(
        [str(arg) for arg in args],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str], *, timeout: float = COMMAND_TIMEOUT) -> Finished:
    """Wait for a started command; fail the test if it overruns or leaves processes of its group running."""
    argv = tuple(str(arg) for arg in process.args)  # type: ignore[union-attr]
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        stdout, stderr = process.communicate()
        pytest.fail(f"timed out after {timeout}s: {Finished(argv, -9, stdout, stderr).explain()}")
    finished = Finished(argv, process.returncode, stdout, stderr)
    if _kill_group(process.pid):
        pytest.fail(f"left processes running after it ended (now killed): {finished.explain()}")
    return finished


def _kill_group(pgid: int) -> bool:
    """SIGKILL every process left in the group; whether there was any."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies left (macOS says so); nothing runs
        return False
    return True


def clean_env(bin_dir: Path | None = None) -> dict[str, str]:
    """This environment without what would point a child at this repo or this pytest run (PYTHONPATH, a venv,
    HANDOFF_* settings, pytest's own variables); with `bin_dir` first on PATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
        and not key.startswith(("HANDOFF_", "PYTEST_"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return env


@dataclass(frozen=True)
class UserVenv:
    """A fresh venv with Handoff's wheel installed, as a user's."""

    root: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def env(self) -> dict[str, str]:
        return clean_env(self.bin)

    def run(self, program: str, *args: str | Path, cwd: Path, timeout: float = COMMAND_TIMEOUT) -> Finished:
        """`program` from the venv's bin/ (python, handoff, pip, pytest) with `args`, in `cwd`."""
        return run([self.bin / program, *args], cwd=cwd, env=self.env, timeout=timeout)


BUILD_MARKERS = ("ready", "failed")
"""What the build leaves in its folder when it ends: `ready`, or `failed` holding why."""
_started_here: list[subprocess.Popen[bytes]] = []
"""The build this process started, if any: it waits for it before the session ends."""


def _packaging_dir(factory: pytest.TempPathFactory) -> Path:
    """The folder of the user venv, shared by every xdist worker of this run (in the folder their own are in)."""
    shared = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the directory every worker's own temporary directory is in
    return shared / "packaging"


def _start_build(base: Path) -> None:
    """Start building the user venv in a process of its own, unless this run has started it already.

    The first worker to take the lock starts it; the build (venv_build.py) leaves `ready` or `failed` in `base`.
    """
    with (base.parent / "packaging.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (base / "pid").exists():
            return
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir()
        with (base / "build.log").open("wb") as log:
            build = subprocess.Popen(
                [sys.executable, "-m", "tests.packaging.venv_build", str(base)],
                cwd=ROOT,
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (base / "pid").write_text(str(build.pid))
        _started_here.append(build)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the user venv's build as soon as the run knows that a test it runs needs it (after `-k` and the like).

    The build is a minute of pip: started here, in the background, it is ready or nearly so when a packaging test
    asks for it, instead of holding an xdist worker (two, when both packaging files wait on it) for that minute.
    """
    if config.option.collectonly:
        return
    if any("user_venv" in getattr(item, "fixturenames", ()) for item in items):
        _start_build(_packaging_dir(config._tmp_path_factory))  # type: ignore[attr-defined]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Wait for the build this process started (another worker may be using it) before the root conftest checks
    that no process outlives the session; stop it at once when the session was interrupted."""
    for build in _started_here:
        try:
            build.wait(timeout=0 if exitstatus == pytest.ExitCode.INTERRUPTED else PIP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(build.pid)
            build.wait()


@pytest.fixture(scope="session")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> UserVenv:
    """Handoff's wheel, built from this tree, installed with its dependencies and the test tools in a fresh venv.

    Built once per test run, even on several xdist workers, in the background from the start of the run
    (`pytest_collection_modifyitems`); a test waits here until it is ready (it is read-only to the tests).
    """
    base = _packaging_dir(tmp_path_factory)
    _start_build(base)  # a no-op when the hook has started it
    pid = int((base / "pid").read_text())
    deadline = time.monotonic() + PIP_TIMEOUT
    while not _build_ended(base):
        if not _running(pid) and not _build_ended(base):
            pytest.fail(f"the user venv's build (pid {pid}) stopped without a result:\n{_log(base)}")
        if time.monotonic() > deadline:
            pytest.fail(f"the user venv's build (pid {pid}) did not end in {PIP_TIMEOUT}s:\n{_log(base)}")
        time.sleep(0.2)
    if (base / "failed").exists():
        pytest.fail(f"the user venv's build failed:\n{(base / 'failed').read_text()}\n--- its log\n{_log(base)}")
    (wheel,) = (base / "dist").glob("temporal_handoff-*.whl")
    return UserVenv(base / "venv", wheel)


def _build_ended(base: Path) -> bool:
    return any((base / marker).exists() for marker in BUILD_MARKERS)


def _running(pid: int) -> bool:
    """Whether the process runs: a zombie (ended, not yet reaped by the worker that started it) does not."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _log(base: Path) -> str:
    return (base / "build.log").read_text(errors="replace")[-5000:]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty folder outside the repo, where a user's project lives."""
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder

"""Handoff as a user gets it: the wheel built from this tree, installed in a fresh venv outside the repo.

Once per session: the wheel is built from a snapshot of the files it is made of (so the build writes nothing into
the work tree), and a venv is created and given the wheel with its dependencies, pytest and pytest-asyncio, from
PyPI (pip's cache makes that quick after the first time). Every command runs in a process group of its own with a
clean environment, and the group is stopped when the command ends, so nothing a test starts outlives it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "handoff", "schemas", "workflows", "activities", "workers")
"""What the wheel is built from (pyproject's packages, package-dir and readme): nothing else is copied."""
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
TEST_DEPENDENCIES = ("pytest>=8", "pytest-asyncio>=1.0")
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


@pytest.fixture(scope="session")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> UserVenv:
    """Handoff's wheel, built from this tree, installed with its dependencies and the test tools in a fresh venv.

    Built once per test run, even on several xdist workers: the first worker to take the lock builds it in the run's
    shared temporary directory, the others wait and use it (it is read-only to the tests).
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the directory every worker's own temporary directory is in
    base = shared / "packaging"
    with (shared / "packaging.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ready = base / "ready"
        if not ready.exists():
            shutil.rmtree(base, ignore_errors=True)  # a build that failed half-way: start again
            base.mkdir()
            _build_user_venv(base)
            ready.touch()
    (wheel,) = (base / "dist").glob("temporal_handoff-*.whl")
    return UserVenv(base / "venv", wheel)


def _build_user_venv(base: Path) -> None:
    source, dist, root = base / "source", base / "dist", base / "venv"
    source.mkdir()
    for name in WHEEL_SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, symlinks=True, ignore=JUNK)
        else:
            shutil.copy2(origin, source / name)
    env = clean_env()
    # The venv and the wheel do not depend on each other: make them at the same time (two cores).
    venv = start([sys.executable, "-m", "venv", root], cwd=base, env=env)
    try:
        built = run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, source],
            cwd=base,
            env=env,
            timeout=PIP_TIMEOUT,
        )
    finally:
        created = finish(venv, timeout=PIP_TIMEOUT)
    assert 0 == built.code, built.explain()
    assert 0 == created.code, created.explain()
    (wheel,) = dist.glob("temporal_handoff-*.whl")
    user = UserVenv(root, wheel)
    # --no-compile then compileall in parallel: quicker than pip's one-by-one compile, and PYTHONDONTWRITEBYTECODE
    # (set on some machines) would otherwise make every `handoff` process compile its imports again.
    installed = user.run(
        "pip", "install", "--quiet", "--no-compile", wheel, *TEST_DEPENDENCIES, cwd=base, timeout=PIP_TIMEOUT
    )
    assert 0 == installed.code, installed.explain()
    site_packages = user.run("python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base)
    compiled = user.run(
        "python", "-m", "compileall", "-q", "-j", "0", site_packages.stdout.strip(), cwd=base, timeout=PIP_TIMEOUT
    )
    assert 0 == compiled.code, compiled.explain()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty folder outside the repo, where a user's project lives."""
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder

"""Builds the user venv of `conftest.user_venv`: `python -m tests.packaging.venv_build <folder>`.

A process of its own, which the test session starts in the background as soon as it knows a packaging test will run
(conftest.py), so that the minute pip takes overlaps the rest of the suite. It leaves in the folder `dist/` (the
wheel built from a snapshot of the files it is made of, so the build writes nothing into the work tree), `venv/`
(a fresh venv given the wheel with its dependencies, pytest and pytest-asyncio, from PyPI: pip's cache makes that
quick after the first time), and then `ready`, or `failed` with why.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from pathlib import Path

from tests.packaging.conftest import PIP_TIMEOUT, ROOT, UserVenv, clean_env, finish, run, start

WHEEL_SOURCES = ("pyproject.toml", "README.md", "handoff", "schemas", "workflows", "activities", "workers")
"""What the wheel is built from (pyproject's packages, package-dir and readme): nothing else is copied."""
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
TEST_DEPENDENCIES = ("pytest>=8", "pytest-asyncio>=1.0")


def build_user_venv(base: Path) -> None:
    """The wheel in `base/dist`, and a venv in `base/venv` with it, its dependencies and the test tools installed."""
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


def main(base: Path) -> int:
    """Build, then leave `ready`; or leave `failed` with the error (a command's output included) and exit 1."""
    try:
        build_user_venv(base)
    except BaseException:  # pytest.fail's Failed too (a command overran or left processes): the test reports it
        (base / "failed").write_text(traceback.format_exc())
        return 1
    (base / "ready").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))

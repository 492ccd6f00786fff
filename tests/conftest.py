"""Test-session plumbing shared by every test module."""

from __future__ import annotations

import os
import sys

import pytest

_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave with `os._exit` once pytest has reported everything.

    The Temporal SDK's Rust core can abort the interpreter at exit (`PyGILState_Release`, exit 134) at random after
    a clean shutdown (sdk-python issue #300); skipping interpreter teardown keeps pytest's real status.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)

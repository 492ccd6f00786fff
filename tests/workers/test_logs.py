"""Logs: in JSON, an exception is a structured field (type, message, frames), from structlog and stdlib alike."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from handoff.workers.logs import configure_logging
from tests.workers.cli_runner import restored_logging


def _fail() -> None:
    raise ValueError("the POS said no")


@pytest.mark.parametrize("source", ["structlog", "stdlib"])
def test_json_logs_keep_the_traceback_as_fields(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    with restored_logging():
        configure_logging("INFO", "json")
        try:
            _fail()
        except ValueError:
            if source == "structlog":
                structlog.get_logger("handoff.test").exception("delivery.failed", workflow_id="w-1")
            else:
                logging.getLogger("temporalio.test").exception("activity failed")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])

    [exception] = line["exception"]
    assert ("ValueError", "the POS said no") == (exception["exc_type"], exception["exc_value"])
    assert "_fail" in [frame["name"] for frame in exception["frames"]]

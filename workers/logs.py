"""structlog set-up, once per process: console lines in development, JSON lines in production.

Library code logs through `structlog.get_logger()` and binds handoff, run and case ids; this module decides how
those events are rendered. When tracing is on (`handoff.workers.tracing`), each event logged inside a span carries
its `trace_id` and `span_id`, so a log search and the trace back-end lead to each other.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.types import EventDict, WrappedLogger

from handoff.workers.tracing import current_trace_ids


def configure_logging(level: str = "INFO", fmt: str = "console") -> None:
    """Route structlog and the standard library (Temporal's own loggers) to stderr in one format."""
    renderers: list[structlog.types.Processor] = (
        # An exception becomes a structured field (type, message, frames): a log search finds it by its parts.
        [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [
            structlog.dev.ConsoleRenderer(
                # Plain tracebacks: rich's formatter imports lazily, which fails inside Temporal's workflow sandbox.
                colors=False,
                exception_formatter=structlog.dev.plain_traceback,
            )
        ]
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *renderers,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def add_trace_ids(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """The current span's `trace_id` and `span_id`, when there is one (never when tracing is off)."""
    for key, value in current_trace_ids().items():
        event.setdefault(key, value)
    return event

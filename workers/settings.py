"""Every setting of Handoff, in one typed place. Each is read from an environment variable `HANDOFF_<NAME>`.

The defaults run everything on this machine: the embedded Temporal dev server on localhost and a SQLite ledger
under `.handoff/`. Production sets the Temporal address, TLS and a PostgreSQL URL (see docs/operations.md).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handoff.schemas.diagnosis import Thresholds

MIN_DECISION_KEY_LENGTH = 32

_THRESHOLDS = Thresholds()
"""The diagnosis's own defaults: the `HANDOFF_DIAGNOSE_*` settings start from them, so the two never disagree."""

_SPAN = re.compile(r"\s*(\d+)\s*([dhm])\s*")
_SPAN_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_span(text: str) -> timedelta:
    """A time span as people write it on a command line or in a variable: `90d`, `12h`, `30m`.

    A `ValueError` that says how to write one otherwise: a zero span, a bare number (days? seconds?) or a span
    longer than a `timedelta` holds is as unusable as a typo.
    """
    match = _SPAN.fullmatch(text)
    if match is not None and int(match[1]) > 0:
        try:
            return timedelta(**{_SPAN_UNITS[match[2]]: int(match[1])})
        except OverflowError:
            pass
    raise ValueError(
        f"{text!r} is not a time span: write a whole number of days, hours or minutes, e.g. 90d, 12h or 30m"
    )


class Settings(BaseSettings):
    """Handoff's settings. Field docs are the settings table in docs/operations.md."""

    model_config = SettingsConfigDict(env_prefix="HANDOFF_", extra="ignore")

    home: Path = Field(default=Path(".handoff"), description="Where the embedded server and SQLite files live.")
    app: str | None = Field(
        default=None, description="Your app as `module:attribute` (a `handoff.Handoffs`), when `--app` is not given."
    )

    # Temporal
    temporal_address: str = Field(default="localhost:7233", description="host:port of the Temporal frontend.")
    namespace: str = Field(default="default", description="Temporal namespace.")
    task_queue: str = Field(default="handoff", description="Task queue the worker polls and triggers start on.")
    tls_cert: Path | None = Field(default=None, description="Client certificate (PEM) for mTLS / Temporal Cloud.")
    tls_key: Path | None = Field(default=None, description="Client private key (PEM) for mTLS / Temporal Cloud.")
    tls_ca: Path | None = Field(default=None, description="CA bundle (PEM) to verify the server, if not public.")
    api_key: str | None = Field(default=None, description="Temporal Cloud API key, instead of mTLS.")

    # Embedded server (`handoff server`)
    server_port: int = Field(default=7233, description="gRPC port of the embedded dev server.")
    server_ui_port: int = Field(default=8233, description="UI port of the embedded dev server.")
    server_ui: bool = Field(default=True, description="Serve the Temporal UI from the embedded server.")

    # Ledger
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the ledger; default: SQLite at <home>/ledger.db."
    )

    # Runs
    sla_scale: float = Field(
        default=1.0, gt=0, description="Multiplies every contract SLA (0.001 turns hours into seconds for demos)."
    )
    retention: timedelta | None = Field(
        default=None,
        description="How long the ledger keeps an ended run's payload snapshots (90d, 12h, 30m): what `handoff "
        "purge` removes when it is given no --older-than. Unset: kept until purged by hand.",
    )

    # Worker
    max_concurrent_activities: int = Field(default=100, ge=1, description="Activities one worker runs at once.")
    max_concurrent_workflow_tasks: int = Field(default=100, ge=1, description="Workflow tasks one worker runs.")
    max_cached_workflows: int = Field(
        default=1_000, ge=0, description="Runs kept in a worker's cache; parked runs beyond it are replayed on resume."
    )
    graceful_shutdown_seconds: float = Field(
        default=30, ge=0, description="On SIGTERM, how long in-flight activities may finish."
    )
    metrics_port: int | None = Field(default=None, description="Serve Prometheus metrics on this port (0.0.0.0).")
    otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^/\s]+(/\S*)?$",
        description="Send OpenTelemetry traces over OTLP/HTTP to this URL, e.g. `http://collector:4318/v1/traces`: "
        "one trace from the API's `POST /events/<event>` through the run's workflow to each of its activities. The "
        "exporter's own `OTEL_EXPORTER_OTLP_*` variables (headers, timeout, certificate) apply. Needs `pip install "
        "'temporal-handoff[tracing]'`. Unset: no tracing, and OpenTelemetry is not imported.",
    )
    service_name: str = Field(
        default="handoff",
        min_length=1,
        description="The `service.name` of this process's traces, when HANDOFF_OTLP_ENDPOINT is set (e.g. "
        "handoff-api and handoff-worker, to tell processes apart).",
    )
    delivery_pause_seconds: float = Field(
        default=0, ge=0, description="Tests only: pause between a delivery's write and its acknowledgement."
    )

    # API
    api_host: str = Field(default="127.0.0.1", description="Bind address of `handoff api`.")
    api_port: int = Field(default=8000, description="Port of `handoff api`.")
    max_payload_bytes: int = Field(default=64 * 1024, ge=1, description="Largest event body the API accepts.")
    auth_failure_limit: int = Field(
        default=10,
        ge=1,
        description="Bad API tokens one client address may send within HANDOFF_AUTH_FAILURE_WINDOW_SECONDS; then 429.",
    )
    auth_failure_window_seconds: float = Field(
        default=60,
        gt=0,
        description="The window bad API tokens are counted in, per address and per API process (in memory).",
    )

    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/\s]+(/\S*)?$",
        description="The address operators open Handoff's API and inbox at, e.g. `https://handoff.example.com`: "
        "notifications link each case's page under it, at /inbox/cases/<case id>. Unset: http://127.0.0.1:<api_port>, "
        "the API's own address on this machine.",
    )

    signature_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        description="How far a signed event's `Handoff-Signature` timestamp may be from the API's clock; older (or "
        "newer) is refused as stale, and a signature is refused as a replay within it.",
    )

    # Decisions
    decision_key: SecretStr | None = Field(
        default=None,
        description="Secret the API and CLI attest each decision with and workers check it with: the same value "
        "(32 characters or more) for every Handoff process. Required with a shared ledger (not SQLite); unset, a key "
        "made once in <home>/decision.key (mode 0600) serves the processes of one machine.",
    )

    # Diagnosis (`handoff diagnose`): when a share in the ledger becomes a warning sign
    diagnose_min_cases: int = Field(
        default=_THRESHOLDS.min_cases,
        ge=1,
        description="The fewest cases a share is taken over before `handoff diagnose` judges it.",
    )
    diagnose_override_share: float = Field(
        default=_THRESHOLDS.override_share,
        gt=0,
        le=1,
        description="A rule approved as is in this share of its decided cases is overridden.",
    )
    diagnose_timeout_share: float = Field(
        default=_THRESHOLDS.timeout_share,
        gt=0,
        le=1,
        description="This share of decided cases ending by timeout means nobody decides.",
    )
    diagnose_escalation_share: float = Field(
        default=_THRESHOLDS.escalation_share,
        gt=0,
        le=1,
        description="This share of operator-decided cases escalated first means missed SLAs.",
    )
    diagnose_short_reason_words: int = Field(
        default=_THRESHOLDS.short_reason_words,
        ge=1,
        description="A decision's reason with fewer words than this says too little.",
    )
    diagnose_short_reason_share: float = Field(
        default=_THRESHOLDS.short_reason_share,
        gt=0,
        le=1,
        description="This share of decisions with short reasons means terse reasons.",
    )

    # Logging
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["console", "json"] = Field(
        default="console", description="Readable console logs in development, JSON lines in production."
    )

    @field_validator("retention", mode="before")
    @classmethod
    def _span(cls, value: Any) -> Any:
        # Only the span syntax: pydantic would read a bare "90" as 90 seconds, where its writer likely meant days.
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return parse_span(value)
            except ValueError as error:
                raise ValueError(f"HANDOFF_RETENTION: {error}") from None
        return value

    @field_validator("otlp_endpoint", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `HANDOFF_OTLP_ENDPOINT=` (as a compose file passes an unset variable on) means no tracing, not a bad URL.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("decision_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < MIN_DECISION_KEY_LENGTH:
            raise ValueError(
                f"HANDOFF_DECISION_KEY must be {MIN_DECISION_KEY_LENGTH} characters or more; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return key

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'ledger.db'}"


def load_settings() -> Settings:
    """Read the settings from the environment, now (not at import time, so tests can set variables first)."""
    return Settings()

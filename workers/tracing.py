"""OpenTelemetry traces: one trace from the API's `POST /events/{event}` through the run's workflow to each activity.

Off unless `HANDOFF_OTLP_ENDPOINT` is set; then the process exports its spans over OTLP/HTTP (a batch processor),
under `service.name` `HANDOFF_SERVICE_NAME`. OpenTelemetry is an optional extra (`temporal-handoff[tracing]`) and is
imported only when tracing is on.

How the trace connects, by pieces that are each OpenTelemetry's or temporalio's own:
- FastAPI's instrumentation (`Tracing.instrument`, from `create_app`) opens the request's server span, a child of the
  caller's `traceparent` when it sends one;
- temporalio's `TracingInterceptor` on the client (`handoff.workers.client.connect`, and the plugin's
  `configure_client`) opens `StartWorkflow:<handoff>` inside it and writes the context into the start's Temporal
  header `_tracer-data`;
- the same interceptor on the worker (the plugin's `configure_worker`) reads it back: `RunWorkflow:<handoff>` and a
  `StartActivity:`/`RunActivity:` pair for each look-up, delivery, ledger write and notice join that trace.

Headers are not run through the payload codec (the SDK's default `HeaderCodecBehavior.NO_CODEC`, which Handoff keeps):
`_tracer-data` is stored in clear in the history. It holds the W3C `traceparent` (ids, no data) and `baggage`, which
a caller can set on its request: do not put personal data in baggage.

The workflow sandbox needs no passthrough for this: the workflow interceptor is temporalio's own module (passed
through), it makes its spans outside the sandbox through an extern function (none on replay, so a replay records
nothing twice and stays deterministic), and workflow code imports no OpenTelemetry.

One `Tracing` a process, shared by its client and its worker: temporalio skips a worker interceptor its client
already has only when it is the same object, so one instance is what keeps every span from being recorded twice.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handoff.workers.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.contrib.opentelemetry import TracingInterceptor

INSTALL = "pip install 'temporal-handoff[tracing]'"

_REQUIRED = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.instrumentation.fastapi",
    "temporalio.contrib.opentelemetry",
)


class TracingUnavailable(RuntimeError):
    """`HANDOFF_OTLP_ENDPOINT` is set, but OpenTelemetry (the `tracing` extra) is not installed."""


@dataclass(frozen=True)
class Tracing:
    """A process's tracing: the provider its spans go to, and the one Temporal interceptor its client and worker
    share."""

    provider: TracerProvider
    interceptor: TracingInterceptor
    owned: bool = False
    """The provider was made here (from the settings), so `stop_tracing` shuts it down; one given is the giver's."""

    @classmethod
    def to(cls, provider: TracerProvider, *, owned: bool = False) -> Tracing:
        """Tracing to `provider`."""
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return cls(provider, TracingInterceptor(provider.get_tracer("handoff")), owned)

    def instrument(self, api: FastAPI) -> None:
        """A server span for every request the API serves (but the ASGI send/receive spans: noise)."""
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(api, tracer_provider=self.provider, exclude_spans=["receive", "send"])

    def flush(self) -> None:
        """Export what is still batched: a process leaving by `os._exit` runs no exit handler that would."""
        self.provider.force_flush()


_tracing: Tracing | None = None


def tracing_for(settings: Settings) -> Tracing | None:
    """The process's tracing: the one `trace_to` set, else OTLP to `settings.otlp_endpoint` (made once a process),
    else None: tracing is off.

    Raises:
        TracingUnavailable: the endpoint is set and the `tracing` extra is not installed.
    """
    global _tracing
    if _tracing is None and settings.otlp_endpoint is not None:
        _require("HANDOFF_OTLP_ENDPOINT is set")
        _tracing = Tracing.to(_otlp_provider(settings.otlp_endpoint, settings.service_name), owned=True)
    return _tracing


def trace_to(provider: TracerProvider) -> Tracing:
    """Trace this process to `provider` (your own OpenTelemetry pipeline, or a test's in-memory exporter), whatever
    `HANDOFF_OTLP_ENDPOINT` says; call it before connecting or building a worker."""
    global _tracing
    _require("tracing was asked for (trace_to)")
    _tracing = Tracing.to(provider)
    return _tracing


def stop_tracing() -> None:
    """Export what is batched and forget the process's tracing (shutting down a provider made from the settings)."""
    global _tracing
    tracing, _tracing = _tracing, None
    if tracing is not None:
        tracing.flush()
        if tracing.owned:
            tracing.provider.shutdown()


def current_trace_ids() -> dict[str, str]:
    """The current span's `trace_id` and `span_id` (hex, as trace back-ends show them), or nothing when there is no
    span, or OpenTelemetry is not loaded (tracing is off: nothing is imported to find out)."""
    trace: Any = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def _otlp_provider(endpoint: str, service_name: str) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def _require(why: str) -> None:
    """Import what tracing needs, or say which package is missing and how to install it."""
    for module in _REQUIRED:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise TracingUnavailable(
                f"{why}, but tracing needs {module}, which cannot be imported ({error}): {INSTALL}, or unset "
                "HANDOFF_OTLP_ENDPOINT"
            ) from None

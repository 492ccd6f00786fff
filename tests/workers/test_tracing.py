"""Tracing: one trace from `POST /events/{event}` through the run's workflow to every activity it ran; nothing when off.

The spans go to OpenTelemetry's own in-memory exporter (`trace_to`), in place of the OTLP one the settings would
make: the exporter is the only part swapped, the API (uvicorn, with the client its lifespan connects), the worker and
the dev server are real.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from examples.restaurant import RestaurantApp
from examples.restaurant import app as restaurant_app
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.schemas.runs import HandoffResult, Stage
from handoff.workers.api import create_app
from handoff.workers.client import connect
from handoff.workers.logs import add_trace_ids
from handoff.workers.settings import Settings
from handoff.workers.testkit import TEST_DECISION_KEY, HandoffKit, running_handoffs
from handoff.workers.tracing import INSTALL, TracingUnavailable, stop_tracing, trace_to, tracing_for
from handoff.workers.trigger import trigger
from tests.api.conftest import serving
from tests.runtime import payloads
from tests.runtime.processes import handoff_env, handoff_process

HEADER = "_tracer-data"
"""The Temporal header temporalio's `TracingInterceptor` carries the trace context in."""


@pytest.fixture(autouse=True)
def no_process_tracing() -> Iterator[None]:
    """Each test starts, and leaves, with the process's tracing off."""
    stop_tracing()
    yield
    stop_tracing()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, to an in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_to(provider)
    yield exporter
    provider.shutdown()


@asynccontextmanager
async def posting(
    client: Client, env: WorkflowEnvironment, app: RestaurantApp, directory: Path
) -> AsyncIterator[tuple[HandoffKit, httpx.AsyncClient]]:
    """A worker for the app, and the API over uvicorn connecting to the dev server itself (through `connect`, as in
    production: no client handed in), with an event source's token."""
    async with running_handoffs(client, app, directory, sla_scale=1 / 30) as kit:
        token = add_operator(kit.ledger, "till", [], declared_groups=app.catalog.group_names, role=Role.SOURCE)
        settings = kit.settings.model_copy(update={"temporal_address": env.client.service_client.config.target_host})
        async with serving(create_app(settings, app, ledger=kit.ledger), token) as http:
            yield kit, http


async def post_and_finish(kit: HandoffKit, http: httpx.AsyncClient) -> str:
    """Post a reservation, wait for its run to end delivered; its workflow id."""
    response = await http.post("/events/reservation.confirmed", json=payloads.reservation())
    assert 202 == response.status_code, response.text
    workflow_id: str = response.json()["workflow_id"]
    result: HandoffResult = await kit.result(workflow_id)
    assert Stage.DELIVERED == result.stage
    return workflow_id


async def activities_run(kit: HandoffKit, workflow_id: str) -> list[str]:
    """The type of every activity the run ran, from its history: those scheduled, and the local ones (their markers
    name them in the SDK's own JSON, outside the payload codec)."""
    history = await kit.client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    local = [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)["activity_type"]
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    return scheduled + local


async def start_header(kit: HandoffKit, workflow_id: str) -> Payload | None:
    """The trace-context header the run was started with, as stored in its history, or None."""
    history = await kit.client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return started.header.fields.get(HEADER)


async def test_one_trace_from_the_api_through_the_workflow_to_every_activity(
    spans: InMemorySpanExporter,
    client: Client,
    temporal_env: WorkflowEnvironment,
    restaurant: RestaurantApp,
    tmp_path: Path,
) -> None:
    """The API's request span is the root; the start, the run and a span for each activity it ran share its trace."""
    async with posting(client, temporal_env, restaurant, tmp_path) as (kit, http):
        workflow_id = await post_and_finish(kit, http)
        activities = await activities_run(kit, workflow_id)
        header = await start_header(kit, workflow_id)

    finished = spans.get_finished_spans()
    [request] = [s for s in finished if s.name == "POST /events/{event}" and s.kind == SpanKind.SERVER]
    trace_id = request.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    names = [s.name for s in in_trace]
    assert request.parent is None
    [start] = [s for s in in_trace if s.name == "StartWorkflow:reservation-to-pos"]
    assert start.parent is not None and request.context.span_id == start.parent.span_id
    assert 1 == names.count("RunWorkflow:reservation-to-pos")
    assert {"run_lookups", "deliver"} <= set(
        activities
    )  # a happy run's ledger writes ride with these two (local, regular)
    # One RunActivity span per activity run, local ones included (a retried attempt would add one: this run has none).
    assert sorted(f"RunActivity:{a}" for a in activities) == sorted(n for n in names if n.startswith("RunActivity:"))
    assert all(_parent_in(s, in_trace) for s in in_trace if s is not request)
    assert [] == [s.name for s in finished if s.context.trace_id != trace_id and s.name.startswith("Run")]
    # The trace context is a header in clear (headers skip the payload codec): the W3C traceparent of the start.
    assert header is not None and b"json/plain" == header.metadata["encoding"]
    assert f"{trace_id:032x}" == json.loads(header.data)["traceparent"].split("-")[1]


def _parent_in(span: ReadableSpan, trace: list[ReadableSpan]) -> bool:
    return span.parent is not None and any(span.parent.span_id == other.context.span_id for other in trace)


async def test_unset_endpoint_adds_no_interceptor_and_no_instrumentation(
    client: Client, temporal_env: WorkflowEnvironment, restaurant: RestaurantApp, tmp_path: Path
) -> None:
    """Without HANDOFF_OTLP_ENDPOINT: no tracing, FastAPI is not instrumented, the clients carry no tracing
    interceptor and a run is started without a trace header."""
    settings = Settings(home=tmp_path, temporal_address=temporal_env.client.service_client.config.target_host)
    assert tracing_for(settings) is None
    api = create_app(settings, restaurant)
    assert not getattr(api, "_is_instrumented_by_opentelemetry", False)
    connected = await connect(settings)
    assert [] == _tracing_interceptors(connected)

    async with posting(client, temporal_env, restaurant, tmp_path) as (kit, http):
        workflow_id = await post_and_finish(kit, http)
        assert await start_header(kit, workflow_id) is None


def _tracing_interceptors(client: Client) -> list[TracingInterceptor]:
    return [i for i in client.config(active_config=True)["interceptors"] if isinstance(i, TracingInterceptor)]


async def test_one_interceptor_per_process_shared_by_connect_and_the_plugin(
    spans: InMemorySpanExporter, restaurant: RestaurantApp, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The client `connect` makes and one the plugin configures carry the same single tracing interceptor: a worker
    built on either records each span once."""
    settings = Settings(home=tmp_path, temporal_address=temporal_env.client.service_client.config.target_host)
    connected = await connect(settings)
    plugged = await Client.connect(
        settings.temporal_address,
        interceptors=_tracing_interceptors(connected),
        plugins=[restaurant.plugin(ledger=f"sqlite:///{tmp_path / 'ledger.db'}")],
    )

    [interceptor] = _tracing_interceptors(connected)
    assert [interceptor] == _tracing_interceptors(plugged)


def test_otlp_endpoint_turns_tracing_on_under_the_service_name(tmp_path: Path) -> None:
    """An endpoint makes one OTLP tracing for the process, its spans named by HANDOFF_SERVICE_NAME."""
    settings = Settings(home=tmp_path, otlp_endpoint="http://127.0.0.1:4318/v1/traces", service_name="handoff-api")

    tracing = tracing_for(settings)

    assert tracing is not None and tracing is tracing_for(settings)
    assert "handoff-api" == tracing.provider.resource.attributes["service.name"]


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A stand-in OTLP/HTTP collector on a loopback port: its traces URL, and every export request it received."""
    received: list[ExportTraceServiceRequest] = []

    class Receive(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_spans_reach_the_otlp_endpoint_when_tracing_stops(
    collector: tuple[str, list[ExportTraceServiceRequest]], tmp_path: Path
) -> None:
    """The batched spans are exported over OTLP/HTTP to HANDOFF_OTLP_ENDPOINT, under the service name, at the latest
    when the process's tracing stops (what a process leaving by `os._exit` must do first)."""
    url, received = collector
    tracing = tracing_for(Settings(home=tmp_path, otlp_endpoint=url, service_name="handoff-worker"))
    assert tracing is not None
    with tracing.provider.get_tracer("test").start_as_current_span("RunActivity:deliver"):
        pass

    stop_tracing()

    exported = [
        ({a.key: a.value.string_value for a in resource.resource.attributes}["service.name"], span.name)
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [("handoff-worker", "RunActivity:deliver")] == exported


async def test_a_worker_process_exports_its_spans_into_the_starters_trace(
    spans: InMemorySpanExporter,
    collector: tuple[str, list[ExportTraceServiceRequest]],
    temporal_env: WorkflowEnvironment,
    tmp_path: Path,
) -> None:
    """`handoff worker` with HANDOFF_OTLP_ENDPOINT sends its workflow and activity spans, in the trace of the start
    made here, to the endpoint: at the latest when it stops on SIGTERM (before it leaves by `os._exit`)."""
    url, received = collector
    address = temporal_env.client.service_client.config.target_host
    queue = f"traced-{uuid.uuid4().hex[:8]}"
    starter = await connect(Settings(home=tmp_path, temporal_address=address, decision_key=TEST_DECISION_KEY))
    env = handoff_env(tmp_path, address, queue, otlp_endpoint=url, service_name="handoff-worker")

    with handoff_process(["worker"], env, tmp_path / "worker.log") as worker:
        accepted = await trigger(
            starter, restaurant_app.catalog, "reservation.confirmed", payloads.reservation(), task_queue=queue
        )
        result: HandoffResult = await starter.get_workflow_handle(
            accepted.workflow_id, result_type=HandoffResult
        ).result()
        worker.send_signal(signal.SIGTERM)
        assert 0 == await asyncio.to_thread(worker.wait, 30), (tmp_path / "worker.log").read_text()

    [start] = [s for s in spans.get_finished_spans() if s.name == "StartWorkflow:reservation-to-pos"]
    exported = {
        (span.trace_id.hex(), {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"])
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    names = {span.name for r in received for rs in r.resource_spans for ss in rs.scope_spans for span in ss.spans}
    assert Stage.DELIVERED == result.stage
    assert {(f"{start.context.trace_id:032x}", "handoff-worker")} == exported
    assert {"RunWorkflow:reservation-to-pos", "RunActivity:run_lookups", "RunActivity:deliver"} <= names


def test_endpoint_without_the_extra_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the endpoint set and OpenTelemetry's exporter not importable, the error names the extra to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    settings = Settings(home=tmp_path, otlp_endpoint="http://collector:4318/v1/traces")

    with pytest.raises(TracingUnavailable) as raised:
        tracing_for(settings)

    assert INSTALL in str(raised.value) and "HANDOFF_OTLP_ENDPOINT" in str(raised.value)


def test_blank_endpoint_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`HANDOFF_OTLP_ENDPOINT=` (a compose file passing an unset variable on) means no tracing, not a bad URL."""
    monkeypatch.setenv("HANDOFF_OTLP_ENDPOINT", "")

    assert Settings().otlp_endpoint is None


def test_log_events_in_a_span_carry_its_trace_id(spans: InMemorySpanExporter) -> None:
    """A log event inside a span gets the span's trace and span ids; outside any span, none."""
    tracing = tracing_for(Settings())
    assert tracing is not None
    with tracing.provider.get_tracer("test").start_as_current_span("work") as span:
        inside = add_trace_ids(None, "info", {"event": "delivery.sent"})
    outside = add_trace_ids(None, "info", {"event": "delivery.sent"})

    context = span.get_span_context()
    assert (f"{context.trace_id:032x}", f"{context.span_id:016x}") == (inside["trace_id"], inside["span_id"])
    assert {"event": "delivery.sent"} == outside

"""The one Temporal client factory: the worker, the CLI, the API and the tests all connect through `connect`.

It sets Handoff's data converter (every payload is a pydantic model, encrypted with the key derived from the decision
key: `handoff.workers.codec`), TLS or an API key for Temporal Cloud, the process's runtime (which carries the
Prometheus metrics endpoint, when one is configured) and, when tracing is on, the process's tracing interceptor
(`handoff.workers.tracing`).
"""

from __future__ import annotations

from temporalio.client import Client, TLSConfig
from temporalio.converter import DataConverter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from handoff.workers.codec import Keyring, handoff_data_converter
from handoff.workers.decisions import decision_key
from handoff.workers.settings import Settings
from handoff.workers.tracing import tracing_for

_runtime: Runtime | None = None


def runtime_for(settings: Settings) -> Runtime | None:
    """The process's one Runtime with Prometheus metrics on `metrics_port`, or None for the SDK's default."""
    global _runtime
    if settings.metrics_port is None:
        return None
    if _runtime is None:
        _runtime = Runtime(
            telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"0.0.0.0:{settings.metrics_port}"))
        )
    return _runtime


def tls_for(settings: Settings) -> TLSConfig | bool:
    """mTLS with a client certificate; TLS against a private CA; plain TLS with an API key; else none (dev)."""
    ca = settings.tls_ca.read_bytes() if settings.tls_ca else None
    if settings.tls_cert and settings.tls_key:
        return TLSConfig(
            client_cert=settings.tls_cert.read_bytes(),
            client_private_key=settings.tls_key.read_bytes(),
            server_root_ca_cert=ca,
        )
    if ca is not None:
        return TLSConfig(server_root_ca_cert=ca)
    return bool(settings.api_key)


def keyring_for(settings: Settings) -> Keyring:
    """The payload keys of these settings: derived from their decision key (`decision_key`, which says what to set
    when there is none)."""
    return Keyring.of(decision_key(settings))


async def connect(settings: Settings) -> Client:
    """A client for the configured Temporal address and namespace.

    The payload key is taken when a payload first needs it, not here: a command that reads only the ledger or lists
    runs works on a host without the decision key, and says what to set once it meets an encrypted payload.
    """
    tracing = tracing_for(settings)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=handoff_data_converter(lambda: keyring_for(settings)),
        tls=tls_for(settings),
        api_key=settings.api_key,
        runtime=runtime_for(settings),
        interceptors=[tracing.interceptor] if tracing else [],
    )


def with_data_converter(client: Client, data_converter: DataConverter) -> Client:
    """A client on the same connection, namespace and interceptors as `client`, converting with `data_converter`.

    Plugins are not applied again: their effect (interceptors, converter) is already in the client's active config,
    and `data_converter` replaces the converter they chose.
    """
    config = client.config(active_config=True)
    return Client(
        config["service_client"],
        namespace=config["namespace"],
        data_converter=data_converter,
        interceptors=config["interceptors"],
        default_workflow_query_reject_condition=config["default_workflow_query_reject_condition"],
        header_codec_behavior=config["header_codec_behavior"],
    )

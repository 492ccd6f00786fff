"""The one Temporal client factory: the worker, the CLI, the API and the tests all connect through `connect`.

It sets the pydantic data converter (every payload is a pydantic model), TLS or an API key for Temporal Cloud,
and the process's runtime (which carries the Prometheus metrics endpoint, when one is configured).
"""

from __future__ import annotations

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from handoff.workers.settings import Settings

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


async def connect(settings: Settings) -> Client:
    """A client for the configured Temporal address and namespace."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        tls=tls_for(settings),
        api_key=settings.api_key,
        runtime=runtime_for(settings),
    )

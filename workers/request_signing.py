"""Signing a request body as Handoff does, without the web stack: `Handoff-Signature: t=<unix seconds>,v1=<hex>`.

Event sources sign what they send to `POST /events` (`workers/api/signatures.py` checks it), and Handoff signs the
notices its webhook notifier sends (`workers/notifiers.py`) the same way. Kept apart from the API so that a worker,
which signs notices, does not import FastAPI to do it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "Handoff-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`: one `v1` value."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The `Handoff-Signature` a source sends for `body`: one `v1` per secret, at `timestamp` (default: now)."""
    at = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={at}", *(f"v1={sign(secret, at, body)}" for secret in secrets)])

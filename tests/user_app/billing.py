"""The billing service's adapter: invoice lines over HTTP, made idempotent by billing's `Idempotency-Key` header.

Billing answers 201 for a line it stored and 200 for a key it stored before, with the stored line, so a retried
delivery (a worker that crashed after billing answered) writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from handoff import WriteOutcome

OUTCOMES = {201: WriteOutcome.WRITTEN, 200: WriteOutcome.ALREADY_WRITTEN}


class BillingAdapter:
    """Writes invoice lines to billing at `base_url`; use it inside `async with`, which owns its HTTP client."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> BillingAdapter:
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=self._timeout)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        """POST the line with `record_key` as its idempotency key.

        Raises:
            httpx.HTTPError: billing is unreachable or failed; the delivery is retried with the same key.
            RuntimeError: the adapter is used outside `async with`.
        """
        if self._http is None:
            raise RuntimeError(f"the billing adapter for {self.base_url} is closed: use it inside `async with`")
        response = await self._http.post("/invoice-lines", json=dict(fields), headers={"Idempotency-Key": record_key})
        response.raise_for_status()
        try:
            return OUTCOMES[response.status_code]
        except KeyError:
            raise httpx.HTTPStatusError(
                f"billing answered {response.status_code} to invoice line {record_key!r}; expected 201 or 200",
                request=response.request,
                response=response,
            ) from None

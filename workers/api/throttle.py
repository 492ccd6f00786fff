"""Guessing API tokens: bad tokens counted per client address, and 429 for an address that sent too many.

After `auth_failure_limit` bad tokens from one address within `auth_failure_window_seconds`, every request from that
address that needs a token gets 429 with `Retry-After`, before its token is even looked at, until the oldest of those
failures leaves the window; the address may then try again, so it never gets more than the limit a window. A valid
token does not clear the count: else one valid token (a viewer's) would let its holder go on guessing others.

The count is kept in memory, per API process: a restart forgets it, and N API processes behind a load balancer allow
N times the limit. That is enough to make guessing pointless (a token has 256 random bits) and to keep guessers off
the ledger; it is not an account lock-out. The address is the one uvicorn gives the app: the peer, or the client
`X-Forwarded-For` names when the peer is a proxy uvicorn trusts (`FORWARDED_ALLOW_IPS`, by default loopback only).
Behind a proxy uvicorn does not trust, every client has the proxy's address and they share one count.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque


class FailedCredentials:
    """Bad-token times per client address, the last `limit` of each, within a sliding `window_seconds`.

    Used from the event loop only (the API's dependencies are async), so it needs no lock.
    """

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        # Least recently failed first, so forgetting the addresses whose failures all left the window stops early.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Whole seconds until `address` may send a token again, or None when it may now."""
        now = time.monotonic()
        cutoff = now - self.window_seconds
        self._forget(cutoff)
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.limit or failures[0] <= cutoff:
            return None
        return max(1, math.ceil(failures[0] - cutoff))

    def record(self, address: str) -> None:
        """`address` sent a token that matches no one."""
        failures = self._failures.setdefault(address, deque(maxlen=self.limit))
        failures.append(time.monotonic())
        self._failures.move_to_end(address)

    def _forget(self, cutoff: float) -> None:
        """Drop the addresses whose last failure is older than `cutoff`, so the table holds only recent guessers."""
        while self._failures:
            address, failures = next(iter(self._failures.items()))
            if failures[-1] > cutoff:
                return
            del self._failures[address]

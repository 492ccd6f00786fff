"""The request body size limit, enforced before any route runs, so an oversized event starts nothing.

A declared `Content-Length` over the limit is refused without reading the body; a body without one (chunked) is
counted as it arrives and refused the moment it passes the limit. Accepted bodies are buffered once and replayed
to the app (they are at most `max_payload_bytes`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handoff.schemas.api import ErrorBody
from handoff.workers.api.errors import error_response


class BodySizeLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, 400 for a `Content-Length` that is not a number."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(scope, receive, send, 400, "The Content-Length header is not a number.")
                return
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send, 413, self._too_large(int(declared)))
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending the whole body: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, 413, self._too_large(size, counted=True))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, size: int, *, counted: bool = False) -> str:
        amount = f"more than {self.max_bytes}" if counted else str(size)
        return (
            f"The request body is {amount} bytes; the limit is {self.max_bytes} bytes "
            "(setting HANDOFF_MAX_PAYLOAD_BYTES). Nothing was started or changed."
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status_code: int, detail: str) -> None:
        kind = "payload-too-large" if status_code == 413 else "bad-content-length"
        response = error_response(status_code, ErrorBody(detail=detail, kind=kind), {"Connection": "close"})
        await response(scope, receive, send)

"""The HTTP protocol the API is served with: uvicorn's, but a request HTTP cannot read gets Handoff's JSON error.

uvicorn parses every request before the app sees it, and refuses one it cannot parse (a `Content-Length` that is
not a number, a malformed request line or header, headers past its buffer) itself: `400 Invalid HTTP request
received.` as text/plain, past every handler of the app. A client that reads `detail` from the API's errors would
then fail on exactly the answer that says its request is broken. The subclasses below answer it the way the app
answers everything else: an `ErrorBody` in JSON, `kind` malformed-request, the parser's reason in `detail`; and they
close the connection as uvicorn does, since nothing after a parse error on it can be trusted.

`HTTP_PROTOCOL` is the class to pass as uvicorn's `http=` (`handoff api`, `handoff up`): the protocol uvicorn's
"auto" would pick, httptools when it is installed and h11 otherwise, with that one method replaced.
"""

from __future__ import annotations

import asyncio
import sys
from http import HTTPStatus

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from handoff.schemas.api import ErrorBody

log = structlog.get_logger(__name__)

MAX_REASON_LENGTH = 200
"""How much of the parser's reason `detail` quotes: it may hold the offending request line, up to kilobytes."""


def malformed_request_answer(error: BaseException | None) -> tuple[int, bytes]:
    """The status and JSON body that answer a request the HTTP parser refused with `error`.

    400, or the parser's own 4xx hint when it has a more precise one (h11 says 431 for headers that are too large);
    never a 5xx (h11 hints 501 for a `Transfer-Encoding` it does not support), because the request is at fault.
    """
    hint = getattr(error, "error_status_hint", HTTPStatus.BAD_REQUEST)
    status = hint if isinstance(hint, int) and 400 <= hint < 500 else HTTPStatus.BAD_REQUEST
    reason = (str(error) if error is not None else "") or "the HTTP parser refused it"
    if len(reason) > MAX_REASON_LENGTH:
        reason = reason[:MAX_REASON_LENGTH] + "…"
    body = ErrorBody(
        detail=f"The request is not valid HTTP ({reason}), so it reached no route and nothing was started or "
        "changed. Check its request line, its headers and its Content-Length, and send it again.",
        kind="malformed-request",
    )
    return int(status), body.model_dump_json().encode()


class H11WithJsonErrors(H11Protocol):
    """uvicorn's h11 protocol (the one it uses without httptools), answering a malformed request in JSON."""

    def send_400_response(self, msg: str) -> None:
        # Called from inside uvicorn's `except h11.RemoteProtocolError`: the exception being handled says why.
        status, body = malformed_request_answer(sys.exc_info()[1])
        log.info("api.malformed_request", client=self.client, status=status, uvicorn=msg)
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            # An answer on this connection is already under way (a pipelined request broke mid-response): closing
            # is the only answer left, as uvicorn's own method would end up doing.
            self.transport.close()
            return
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
        ]
        reason = HTTPStatus(status).phrase.encode("ascii")
        self.transport.write(self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b"")
        self.transport.write(self.conn.send(h11.Data(data=body)) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()


HTTP_PROTOCOL: type[asyncio.Protocol]
"""uvicorn's `http=` for the API: the protocol class its "auto" would choose, answering malformed requests in JSON."""

try:
    import httptools  # noqa: F401  (only whether it is installed matters: uvicorn prefers it when it is)
except ImportError:
    HTTP_PROTOCOL = H11WithJsonErrors
else:  # not installed in Handoff's own environment; checked by hand against httptools 0.9
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HttpToolsWithJsonErrors(HttpToolsProtocol):
        """uvicorn's httptools protocol (its choice when httptools is installed), answering malformed requests in
        JSON."""

        def send_400_response(self, msg: str) -> None:
            # Called from inside uvicorn's `except httptools.HttpParserError`, as for h11 above.
            status, body = malformed_request_answer(sys.exc_info()[1])
            log.info("api.malformed_request", client=self.client, status=status, uvicorn=msg)
            lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode("ascii")]
            lines.extend(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers)
            lines.append(b"content-type: application/json\r\n")
            lines.append(b"content-length: " + str(len(body)).encode("ascii") + b"\r\n")
            lines.append(b"connection: close\r\n\r\n")
            self.transport.write(b"".join(lines) + body)
            self.transport.close()

    HTTP_PROTOCOL = HttpToolsWithJsonErrors

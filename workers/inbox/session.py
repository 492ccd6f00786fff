"""Who is signed in to the inbox, and whether a form post came from the inbox's own page.

Signing in takes an API token once (the one `handoff operators add` printed); the browser then holds a session cookie
instead of the token, so the token is never kept in a page, a form or the browser's storage. The cookie names the
operator and when it expires, plus a random nonce, signed with HMAC-SHA256: the server keeps no session table, and a
cookie that was altered, forged or has expired reads as no session at all (the sign-in page, never an error). Who the
operator is, their role and groups, is read from the ledger on every request, so an operator removed or moved to
another group loses what they lost at once, without waiting for the cookie to expire.

The signing key is derived from the decision key (`handoff.workers.decisions.decision_key`): every API process
already holds that secret and nothing else does, so there is no second secret to distribute, and all API processes
behind a load balancer accept each other's cookies. Each use gets its own key through HMAC with a distinct label, so
a session signature can never stand in for a decision's attestation or a payload key (`handoff.workers.codec`
derives those under other labels); rotating the decision key signs everyone out.

CSRF: every form carries a token derived from the session's nonce (HMAC under its own label), checked on every POST
before anything else. Another site can make a browser post to the inbox (the cookie is SameSite=Lax, which already
keeps it off cross-site POSTs in current browsers), but it cannot read the inbox's pages, so it cannot know the token;
a token from another session does not match either. The sign-in form, which has no session yet, is tied the same way
to a short-lived pre-session cookie, so another site cannot sign a browser in under the wrong operator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from handoff.workers.keys import derive_key

SESSION_COOKIE = "handoff_inbox"
"""The cookie holding the signed session."""
SIGN_IN_COOKIE = "handoff_inbox_sign_in"
"""The pre-session cookie the sign-in form's CSRF token is tied to."""
CSRF_FIELD = "csrf_token"
"""The hidden field of every inbox form."""
SESSION_SECONDS = 8 * 3600
"""How long a sign-in lasts: about a shift. The operator is checked in the ledger on every request regardless."""
SIGN_IN_SECONDS = 3600
"""How long the sign-in page stays usable before it must be loaded again."""

_SESSION_LABEL = b"handoff/inbox/session-cookie/hmac-sha256/v1"
_CSRF_LABEL = b"handoff/inbox/csrf-token/hmac-sha256/v1"


@dataclass(frozen=True)
class InboxKeys:
    """The two keys of the inbox, each derived from the decision key under its own label."""

    session: bytes
    csrf: bytes

    @classmethod
    def derive(cls, decision_key: bytes) -> InboxKeys:
        return cls(session=derive_key(decision_key, _SESSION_LABEL), csrf=derive_key(decision_key, _CSRF_LABEL))


@dataclass(frozen=True)
class Session:
    """A signed-in browser: whose session it is, until when, and the nonce its CSRF token is made from."""

    operator: str
    expires_at: int
    nonce: str


def new_session(operator: str, *, now: float | None = None) -> Session:
    """A fresh session for `operator`, with a new nonce (so a new CSRF token) at every sign-in."""
    issued = time.time() if now is None else now
    return Session(operator=operator, expires_at=int(issued) + SESSION_SECONDS, nonce=secrets.token_urlsafe(16))


def encode_session(session: Session, keys: InboxKeys) -> str:
    """The cookie value: the session as JSON, and its signature, both base64url."""
    body = _b64(json.dumps({"o": session.operator, "e": session.expires_at, "n": session.nonce}).encode())
    return f"{body}.{_b64(_sign(keys.session, body.encode()))}"


def decode_session(value: str | None, keys: InboxKeys, *, now: float | None = None) -> Session | None:
    """The session in a cookie value, or None when it is missing, malformed, not signed by us, or expired."""
    if not value or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    try:
        if not hmac.compare_digest(_unb64(signature), _sign(keys.session, body.encode())):
            return None
        fields = json.loads(_unb64(body))
        session = Session(operator=str(fields["o"]), expires_at=int(fields["e"]), nonce=str(fields["n"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if session.expires_at <= (time.time() if now is None else now) or not session.operator or not session.nonce:
        return None
    return session


def csrf_token(nonce: str, keys: InboxKeys) -> str:
    """The CSRF token of the session (or sign-in page) whose nonce this is."""
    return _b64(_sign(keys.csrf, nonce.encode()))


def csrf_matches(nonce: str | None, sent: object, keys: InboxKeys) -> bool:
    """Whether a posted token is the one of this session's nonce: False for no nonce, no token or another's."""
    if not nonce or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(sent.encode(), csrf_token(nonce, keys).encode())


def new_sign_in_nonce() -> str:
    """The pre-session cookie's value: random, and only ever compared through its CSRF token."""
    return secrets.token_urlsafe(16)


def _sign(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

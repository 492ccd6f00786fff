"""Keys for one use each, derived from the one secret Handoff's processes share (the decision key).

Operators configure one secret, `HANDOFF_DECISION_KEY`; the payload codec, the inbox's session cookies and its CSRF
tokens each need a key of their own. HKDF-SHA256 (RFC 5869) with a distinct label per use gives keys that reveal
nothing of the secret or of each other: a leaked session key cannot decrypt a payload.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: bytes, label: bytes, length: int = 32) -> bytes:
    """The key for the use `label` names (e.g. b"handoff/inbox/session-cookie/v1"), `length` bytes long."""
    return HKDF(algorithm=SHA256(), length=length, salt=None, info=label).derive(secret)

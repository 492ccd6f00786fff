"""Session cookies and CSRF tokens without a server: signed, expiring, bound to their session, and keyed apart from
everything else the decision key signs."""

from __future__ import annotations

import time

from handoff.workers.inbox.session import (
    SESSION_SECONDS,
    InboxKeys,
    Session,
    csrf_matches,
    csrf_token,
    decode_session,
    encode_session,
    new_session,
)

KEY = b"a-decision-key-for-the-inbox-session-tests"
KEYS = InboxKeys.derive(KEY)


def test_a_session_reads_back_until_it_expires() -> None:
    """The cookie holds the operator and its expiry; past that moment it reads as no session."""
    session = new_session("hana", now=1_000_000)

    value = encode_session(session, KEYS)

    assert session == decode_session(value, KEYS, now=1_000_000 + SESSION_SECONDS - 1)
    assert None is decode_session(value, KEYS, now=1_000_000 + SESSION_SECONDS)


def test_a_changed_cookie_or_one_signed_with_another_key_reads_as_no_session() -> None:
    """Whoever edits the operator's name in the cookie, or signs their own, gets nothing."""
    value = encode_session(Session("chef", int(time.time()) + 60, "nonce"), KEYS)
    forged_body = encode_session(Session("hana", int(time.time()) + 60, "nonce"), KEYS).split(".")[0]

    assert None is decode_session(f"{forged_body}.{value.split('.')[1]}", KEYS)
    assert None is decode_session(value, InboxKeys.derive(b"another-decision-key-of-some-length"))


def test_a_csrf_token_belongs_to_one_session() -> None:
    """Each sign-in has its own nonce, so a token from another session (even the same operator's) does not match."""
    first, second = new_session("hana"), new_session("hana")

    assert csrf_matches(first.nonce, csrf_token(first.nonce, KEYS), KEYS)
    assert not csrf_matches(first.nonce, csrf_token(second.nonce, KEYS), KEYS)
    assert not csrf_matches(first.nonce, None, KEYS)
    assert not csrf_matches(None, csrf_token(first.nonce, KEYS), KEYS)


def test_the_inboxs_keys_are_neither_the_decision_key_nor_each_other() -> None:
    """A session's signature can never stand in for a decision's attestation, nor for a CSRF token."""
    assert 3 == len({KEY, KEYS.session, KEYS.csrf})
    assert KEYS == InboxKeys.derive(KEY)  # every API process derives the same keys: they accept each other's cookies

"""The inbox's sign-in, sessions and CSRF over plain HTTP, at their edges: each bad case answered as a page (never a
500) that changes nothing, and every good one as a browser needs it."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

import pytest
from sqlmodel import Session, delete

from handoff.activities.ledger.tables import OperatorRow
from handoff.schemas.cases import ExceptionCase
from handoff.workers.decisions import decision_key
from handoff.workers.inbox.session import (
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    InboxKeys,
    encode_session,
    new_session,
)
from handoff.workers.inbox.session import Session as InboxSession
from handoff.workers.testkit import HandoffKit
from tests.api.checks import run_state
from tests.api.conftest import bearer, serving_url
from tests.inbox.conftest import inbox_app
from tests.inbox.visits import csrf_of, visiting, visiting_as


async def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(
    inbox_url: str, tokens: dict[str, str]
) -> None:
    """A page without a session is a 303 to the sign-in page, which sends the browser back where it was going."""
    async with visiting(inbox_url) as visit:
        first = await visit.http.get("/inbox/cases/C-x?a=1")
        signed = await visit.sign_in(tokens["hana"], next_page="/inbox/cases/C-x?a=1")
        elsewhere = await visit.http.get("/inbox/sign-in", params={"next": "https://evil.example/"})

    assert (303, "/inbox/sign-in?next=%2Finbox%2Fcases%2FC-x%3Fa%3D1") == (first.status_code, first.headers["location"])
    assert (303, "/inbox/cases/C-x?a=1") == (signed.status_code, signed.headers["location"])
    assert (303, "/inbox") == (elsewhere.status_code, elsewhere.headers["location"])


async def test_signing_in_sets_an_httponly_samesite_cookie_for_the_inbox_that_holds_no_token(
    inbox_url: str, tokens: dict[str, str]
) -> None:
    """The session cookie is httponly, SameSite=Lax, scoped to /inbox, not Secure over http, and never the token."""
    async with visiting(inbox_url) as visit:
        answer = await visit.sign_in(tokens["hana"])

    headers = answer.headers.get_list("set-cookie")
    cookie = SimpleCookie()
    cookie.load(next(header for header in headers if header.startswith(SESSION_COOKIE + "=")))
    morsel = cookie[SESSION_COOKIE]
    assert (True, "lax", "/inbox", "") == (
        bool(morsel["httponly"]),
        morsel["samesite"].lower(),
        morsel["path"],
        morsel["secure"],
    )
    assert tokens["hana"] not in morsel.value
    assert any(header.startswith(f'{SIGN_IN_COOKIE}=""') for header in headers)  # the pre-session cookie is dropped


async def test_behind_a_trusted_https_proxy_the_session_cookie_is_secure(
    inbox_url: str, tokens: dict[str, str]
) -> None:
    """A browser that reached the inbox over https (as the proxy uvicorn trusts says) gets Secure cookies."""
    proxied = {"X-Forwarded-Proto": "https"}
    async with visiting(inbox_url) as visit:
        form = await visit.http.get("/inbox/sign-in", headers=proxied)
        sign_in_cookie = SimpleCookie()
        sign_in_cookie.load(form.headers["set-cookie"])
        # httpx keeps Secure cookies for https, and the test speaks plain http to the "proxy": send it by hand.
        nonce = sign_in_cookie[SIGN_IN_COOKIE].value
        answer = await visit.http.post(
            "/inbox/sign-in",
            data={"token": tokens["hana"], CSRF_FIELD: csrf_of(form.text)},
            headers={**proxied, "Cookie": f"{SIGN_IN_COOKIE}={nonce}"},
        )

    cookie = SimpleCookie()
    cookie.load(next(h for h in answer.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")))
    assert (True, 303, True) == (
        bool(sign_in_cookie[SIGN_IN_COOKIE]["secure"]),
        answer.status_code,
        bool(cookie[SESSION_COOKIE]["secure"]),
    )


@pytest.mark.parametrize(
    "cookie",
    ["expired", "other-key", "tampered", "garbage", "two-dots", "not-base64", "json-list"],
)
async def test_an_expired_forged_or_garbled_session_cookie_is_the_sign_in_page_not_an_error(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], cookie: str
) -> None:
    """A session cookie that is not ours, not whole, or past its time reads as no session: the sign-in page says
    the session ended, and the cookie is dropped."""
    keys = InboxKeys.derive(decision_key(handoffs.settings))
    good = encode_session(new_session("hana"), keys)
    body, signature = good.split(".")
    values = {
        "expired": encode_session(InboxSession("hana", int(time.time()) - 1, "n0nce"), keys),
        "other-key": encode_session(new_session("hana"), InboxKeys.derive(b"another-decision-key-of-32-characters")),
        "tampered": f"{body[:-2]}xx.{signature}",
        "garbage": "not a session",
        "two-dots": f"{body}.{signature}.{signature}",
        "not-base64": "!!!.***",
        "json-list": encode_session(InboxSession("hana", 0, "x"), keys).replace(body, "WzFd"),
    }
    async with visiting(inbox_url) as visit:
        visit.http.cookies.set(SESSION_COOKIE, values[cookie], path="/inbox")
        answer = await visit.http.get("/inbox")
        page = await visit.http.get(answer.headers["location"])

    assert (303, "/inbox/sign-in?ended=expired") == (answer.status_code, answer.headers["location"])
    assert any(h.startswith(f'{SESSION_COOKIE}=""') for h in answer.headers.get_list("set-cookie"))
    assert (200, True) == (page.status_code, "Your session has ended" in page.text)


async def test_a_decision_post_without_this_sessions_csrf_token_is_refused_and_changes_nothing(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """A decision posted with no CSRF token, a wrong one, or the token of another session (another operator's, or
    the same operator's other sign-in) is 403, and neither the run nor the ledger hears of it."""
    path = f"/inbox/cases/{reservation_case.id}/decision"
    body = {"decision": "reject", "reason": "forged"}
    before = await run_state(handoffs, reservation_case.workflow_id)
    async with (
        visiting_as(inbox_url, tokens["hana"]) as hana,
        visiting_as(inbox_url, tokens["hana"]) as hana_elsewhere,
        visiting_as(inbox_url, tokens["chef"]) as chef,
    ):
        answers = [
            await hana.post(path, body),
            await hana.post(path, {**body, CSRF_FIELD: "x" * 43}),
            await hana.post(path, {**body, CSRF_FIELD: await chef.csrf("/inbox")}),
            await hana.post(path, {**body, CSRF_FIELD: await hana_elsewhere.csrf("/inbox")}),
        ]
        still_open = await hana.http.get(f"/inbox/cases/{reservation_case.id}")
    after = await run_state(handoffs, reservation_case.workflow_id)

    assert [403] * 4 == [answer.status_code for answer in answers]
    assert "this form did not come from your inbox" in answers[0].text
    assert before == after  # not even a refused attempt: the run never heard of these posts
    assert 'id="decision-form"' in still_open.text


async def test_a_sign_in_without_its_forms_csrf_token_is_refused(inbox_url: str, tokens: dict[str, str]) -> None:
    """A sign-in posted without the token of the form this browser was given (login CSRF) starts no session."""
    async with visiting(inbox_url) as visit:
        blind = await visit.post("/inbox/sign-in", {"token": tokens["hana"]})
        await visit.http.get("/inbox/sign-in")  # now the browser has a pre-session cookie, but sends another token
        wrong = await visit.post("/inbox/sign-in", {"token": tokens["hana"], CSRF_FIELD: "forged"})
        cookie = visit.session_cookie

    assert (403, 403, None) == (blind.status_code, wrong.status_code, cookie)
    assert "This sign-in form was not the one your browser was given" in blind.text


async def test_bad_tokens_at_sign_in_count_with_the_apis_and_are_held_off_with_429(
    handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A wrong token at sign-in says so (401) and counts against the address as a bad bearer token does: past the
    limit, sign-in and the API alike answer 429 with Retry-After, even to a good token."""
    settings = handoffs.settings.model_copy(update={"auth_failure_limit": 3})
    async with serving_url(inbox_app(handoffs, settings)) as url, visiting(url) as visit:
        wrong = [await visit.sign_in("not-a-token") for _ in range(3)]
        held = await visit.sign_in(tokens["hana"])
        api = await visit.http.get("/cases", headers=bearer(tokens["hana"]))

    assert [401, 401, 401] == [answer.status_code for answer in wrong]
    assert "The API token is not valid: it matches no one" in wrong[0].text
    assert (429, True, 429) == (held.status_code, "Retry-After" in held.headers, api.status_code)
    assert "Too many requests with a bad API token" in held.text


async def test_an_event_sources_token_cannot_sign_in(inbox_url: str, tokens: dict[str, str]) -> None:
    """The till's token (role source) is refused with the roles the inbox needs; no session is started."""
    async with visiting(inbox_url) as visit:
        answer = await visit.sign_in(tokens["till"])
        cookie = visit.session_cookie

    assert (403, None) == (answer.status_code, cookie)
    assert "The inbox needs the viewer, operator or administrator role; you (till) are a source" in answer.text


async def test_an_operator_moved_to_another_group_loses_the_decision_form_at_once(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """The groups come from the ledger on every request: moved to the kitchen, the host sees the case read-only at
    once, and a decision posted from the page she had open is refused by the run in its own words."""
    case_page = f"/inbox/cases/{reservation_case.id}"
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        before = await hana.http.get(case_page)
        with Session(handoffs.ledger) as session:
            row = session.get(OperatorRow, "hana")
            assert row is not None
            row.groups = ["kitchen-leads"]
            session.add(row)
            session.commit()
        after = await hana.http.get(case_page)
        posted = await hana.post(
            f"{case_page}/decision", {"decision": "reject", "reason": "old tab", CSRF_FIELD: csrf_of(before.text)}
        )

    assert ('id="decision-form"' in before.text, 'id="decision-form"' in after.text) == (True, False)
    assert "owned by front-of-house now; you are in kitchen-leads" in after.text
    assert 403 == posted.status_code
    assert "may not decide case" in posted.text and "it is owned by &#39;front-of-house&#39; now" in posted.text


async def test_an_operator_removed_from_the_ledger_is_signed_out_at_once(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A session outlives nobody's removal: the next page is the sign-in page."""
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        before = await hana.http.get("/inbox")
        with Session(handoffs.ledger) as session:
            session.exec(delete(OperatorRow).where(OperatorRow.name == "hana"))  # type: ignore[call-overload]
            session.commit()
        after = await hana.http.get("/inbox")

    assert (200, 303, "/inbox/sign-in?ended=expired") == (
        before.status_code,
        after.status_code,
        after.headers["location"],
    )


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(inbox_url: str, tokens: dict[str, str]) -> None:
    """Another site cannot sign an operator out; the inbox's own button does, and the cookie goes."""
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        forged = await hana.post("/inbox/sign-out", {})
        still = await hana.http.get("/inbox")
        token = csrf_of(still.text)
        signed_out = await hana.post("/inbox/sign-out", {CSRF_FIELD: token})
        after = await hana.http.get("/inbox")

    assert (403, 200) == (forged.status_code, still.status_code)
    assert (303, "/inbox/sign-in?ended=signed-out") == (signed_out.status_code, signed_out.headers["location"])
    assert (303, None) == (after.status_code, hana.session_cookie)


async def test_inbox_pages_are_not_cached_not_framed_and_not_in_the_openapi_document(
    inbox_url: str, tokens: dict[str, str]
) -> None:
    """Pages with personal data are not stored by the browser nor framed by another site; the JSON API's document
    does not list them."""
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        page = await hana.http.get("/inbox")
        document = (await hana.http.get("/openapi.json")).json()

    assert ("no-store", "DENY") == (page.headers["cache-control"], page.headers["x-frame-options"])
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert [] == [path for path in document["paths"] if path.startswith("/inbox")]


async def test_the_stylesheet_is_served_and_no_other_file(inbox_url: str) -> None:
    """/inbox/static serves the inbox's own files, without a session, and nothing else of the package."""
    async with visiting(inbox_url) as visit:
        css = await visit.http.get("/inbox/static/inbox.css")
        module = await visit.http.get("/inbox/static/web.py")
        climbing = await visit.http.get("/inbox/static/..%2Fweb.py")

    assert (200, "text/css") == (css.status_code, css.headers["content-type"].split(";")[0])
    assert (404, 404) == (module.status_code, climbing.status_code)

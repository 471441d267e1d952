#!/usr/bin/env python3
"""The `dummy` provider in a real browser, through the redirect flow.

Headless Chromium (driven by Playwright) opens a page at the server's origin
(served by request interception, like mfa_check.py's WebAuthn page). The page
does what allauth's example SPA does: it GETs `config` (the server sets the
`csrftoken` cookie), then posts a plain HTML form to
`/_allauth/browser/v1/auth/provider/redirect` with `provider`,
`callback_url`, `process` and `csrfmiddlewaretoken` (the cookie's value).
The browser follows the 302 to the dummy provider's form under
`/accounts/dummy/authenticate/`, where the check fills and submits it.

1. "Log in": the browser lands on the callback URL, where `auth/session`
   is the new social login and `account/providers` lists the account.
2. In a fresh context, "Cancel": the callback URL with
   `error=cancelled&error_process=login`, and no session.
3. In a fresh context, `callback_url=https://evil.example/`: no open
   redirect, the browser ends at the server's `/?error=unknown&…`.

    social_check.py BASE_URL CHROMIUM

Exit 0 when every step answered as expected.
"""

from __future__ import annotations

import base64
import json
import sys
from urllib.parse import parse_qs, urlsplit

PREFIX = "/__social_check/"
CALLBACK = PREFIX + "done"
UID = "4242"
EMAIL = "browser-dummy@example.com"
USERNAME = "browserdummy"

# The frontend: the SPA's way of starting a provider login, a form post
# (a navigation, not fetch) with the CSRF token from the cookie.
START_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>allauth-server social check</title></head>
<body>
<p>Driven by tests/external/social_check.py: a provider login by redirect
with the dummy provider, as allauth's example SPA starts it.</p>
<script>
async function prepare(callbackUrl) {
  const response = await fetch("/_allauth/browser/v1/config", {credentials: "same-origin"});
  const config = await response.json();
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1];
  if (!csrf) {
    return {status: response.status, csrf: null};
  }
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/_allauth/browser/v1/auth/provider/redirect";
  const fields = {
    provider: "dummy",
    callback_url: callbackUrl,
    process: "login",
    csrfmiddlewaretoken: decodeURIComponent(csrf),
  };
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  }
  const button = document.createElement("button");
  button.type = "submit";
  button.id = "go";
  button.textContent = "Continue with Dummy";
  form.appendChild(button);
  document.body.appendChild(form);
  const providers = ((config.data || {}).socialaccount || {}).providers || [];
  return {status: response.status, csrf: true, providers: providers.map((p) => p.id)};
}
</script>
</body>
</html>
"""

# Where the server sends the browser back: the SPA's callback page.
DONE_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>allauth-server social check: callback</title></head>
<body>
<p>Back from the provider.</p>
<script>
async function api(path) {
  const response = await fetch("/_allauth/browser/v1/" + path, {credentials: "same-origin"});
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  return {status: response.status, body};
}
</script>
</body>
</html>
"""

# The server's `/`, intercepted so that the navigation there completes with
# a page of ours whatever the server answers at its root.
ROOT_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>root</title></head>
<body><p>The server's root (intercepted).</p></body></html>
"""


class CheckFailed(Exception):
    pass


def fail(message: str) -> None:
    raise CheckFailed(message)


def expect(what: str, got, want) -> None:
    if got != want:
        fail(f"{what}: got {json.dumps(got)}, want {json.dumps(want)}")
    print(f"  {what}: ok ({json.dumps(got)})")


def new_page(browser, origin: str):
    """A fresh context and page whose frontend pages (START_PAGE at PREFIX,
    DONE_PAGE under it, ROOT_PAGE at `/`) are served at the server's origin.

    Playwright's own routes do not see the requests a redirect makes (it
    continues them unrouted), and the browser gets to the callback URL and to
    `/` by the server's 302s: the page's DevTools session intercepts them
    instead, with the Fetch domain, which pauses every hop of a redirect."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    cdp = context.new_cdp_session(page)

    def paused(event) -> None:
        url = urlsplit(event["request"]["url"])
        if url.path == PREFIX:
            body = START_PAGE
        elif url.path.startswith(PREFIX):
            body = DONE_PAGE
        elif url.path == "/" and event["request"]["method"] == "GET":
            body = ROOT_PAGE
        else:
            cdp.send("Fetch.continueRequest", {"requestId": event["requestId"]})
            return
        cdp.send(
            "Fetch.fulfillRequest",
            {
                "requestId": event["requestId"],
                "responseCode": 200,
                "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"}],
                "body": base64.b64encode(body.encode()).decode(),
            },
        )

    cdp.on("Fetch.requestPaused", paused)
    # `?` is a wildcard in these patterns, `\?` the character.
    patterns = [origin + PREFIX + "*", origin + "/", origin + "/\\?*"]
    cdp.send("Fetch.enable", {"patterns": [{"urlPattern": p, "requestStage": "Request"} for p in patterns]})
    return context, page


def start_login(page, origin: str, callback_url: str) -> None:
    """The SPA's start page: config, then the form post; the browser must be
    redirected (302) to the dummy provider's page."""
    page.goto(origin + PREFIX)
    prepared = page.evaluate("(cb) => prepare(cb)", callback_url)
    expect("GET config", prepared["status"], 200)
    if not prepared.get("csrf"):
        fail("GET config did not set a csrftoken cookie readable by the page")
    print("  csrftoken cookie: ok")
    if "dummy" not in prepared.get("providers", []):
        fail(f"config lists no dummy provider: {prepared.get('providers')}")
    with page.expect_navigation() as navigation:
        page.click("#go")
    response = navigation.value
    if response is None:
        fail("the form post led to no navigation")
    posted = response.request.redirected_from
    if posted is None:
        fail(f"POST auth/provider/redirect: no redirect, the browser is at {page.url} ({response.status})")
    expect("form post method", posted.method, "POST")
    expect("form post path", urlsplit(posted.url).path, "/_allauth/browser/v1/auth/provider/redirect")
    redirect = posted.response()
    expect("POST auth/provider/redirect status", redirect.status if redirect else None, 302)
    return response


def at_dummy_page(page, response) -> None:
    url = urlsplit(page.url)
    expect("redirected to", url.path, "/accounts/dummy/authenticate/")
    if not parse_qs(url.query).get("state"):
        fail(f"the dummy page's URL has no state: {page.url}")
    expect("dummy page status", response.status, 200)
    if page.locator("input[name=id]").count() != 1:
        fail(f"the dummy page has no `id` input: {page.content()[:500]}")


def back_at_callback(page, response, want_url: str) -> None:
    """The dummy page's form (a GET) answered 302 to the callback URL, where
    the frontend's page is."""
    if response is None:
        fail(f"submitting the dummy page led to no navigation (at {page.url})")
    submitted = response.request.redirected_from
    if submitted is None:
        fail(f"the dummy page's form: no redirect, the browser is at {page.url} ({response.status})")
    expect("dummy form submitted to", urlsplit(submitted.url).path, "/accounts/dummy/authenticate/")
    redirect = submitted.response()
    expect("dummy form answer", redirect.status if redirect else None, 302)
    expect("back at the callback URL", page.url, want_url)
    expect("the frontend's callback page", page.title(), "allauth-server social check: callback")


def round_login(browser, origin: str) -> None:
    print("-- 1. log in with the dummy provider")
    context, page = new_page(browser, origin)
    try:
        response = start_login(page, origin, CALLBACK)
        at_dummy_page(page, response)
        page.fill("input[name=id]", UID)
        page.fill("input[name=email]", EMAIL)
        page.check("input[name=email_verified]")
        page.fill("input[name=username]", USERNAME)
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Log in").click()
        back_at_callback(page, navigation.value, origin + CALLBACK)

        got = page.evaluate("api('auth/session')")
        expect("GET auth/session", got["status"], 200)
        data = (got["body"] or {}).get("data") or {}
        user = data.get("user") or {}
        expect("user.username", user.get("username"), USERNAME)
        expect("user.email", user.get("email"), EMAIL)
        methods = data.get("methods") or [{}]
        expect("methods[0].method", methods[0].get("method"), "socialaccount")
        expect("methods[0].provider", methods[0].get("provider"), "dummy")
        expect("methods[0].uid", methods[0].get("uid"), UID)

        got = page.evaluate("api('account/providers')")
        expect("GET account/providers", got["status"], 200)
        accounts = (got["body"] or {}).get("data") or []
        expect(
            "connected accounts",
            [[(a.get("provider") or {}).get("id"), a.get("uid")] for a in accounts],
            [["dummy", UID]],
        )
    finally:
        context.close()


def round_cancel(browser, origin: str) -> None:
    print("-- 2. cancel on the dummy provider's page (a fresh context)")
    context, page = new_page(browser, origin)
    try:
        response = start_login(page, origin, CALLBACK)
        at_dummy_page(page, response)
        with page.expect_navigation() as navigation:
            page.get_by_role("button", name="Cancel").click()
        back_at_callback(page, navigation.value, origin + CALLBACK + "?error=cancelled&error_process=login")
        got = page.evaluate("api('auth/session')")
        expect("GET auth/session", got["status"], 401)
    finally:
        context.close()


def round_open_redirect(browser, origin: str) -> None:
    print("-- 3. callback_url on another origin (a fresh context)")
    context, page = new_page(browser, origin)
    try:
        page.goto(origin + PREFIX)
        prepared = page.evaluate("(cb) => prepare(cb)", "https://evil.example/")
        expect("GET config", prepared["status"], 200)
        with page.expect_navigation() as navigation:
            page.click("#go")
        response = navigation.value
        posted = response.request.redirected_from if response else None
        if posted is None:
            fail(f"POST auth/provider/redirect: no redirect, the browser is at {page.url}")
        redirect = posted.response()
        expect("POST auth/provider/redirect status", redirect.status if redirect else None, 302)
        expect("no open redirect: the browser is at", page.url, origin + "/?error=unknown&error_process=login")
        got = page.evaluate(
            "fetch('/_allauth/browser/v1/auth/session', {credentials: 'same-origin'}).then((r) => r.status)"
        )
        expect("GET auth/session", got, 401)
    finally:
        context.close()


def main() -> int:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    base, chromium = sys.argv[1], sys.argv[2]
    origin = base.rstrip("/")
    print(f"-- the dummy provider by redirect in headless Chromium, at {origin}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            round_login(browser, origin)
            round_cancel(browser, origin)
            round_open_redirect(browser, origin)
        except CheckFailed as error:
            print(f"FAIL {error}")
            return 1
        except PlaywrightError as error:
            print(f"FAIL the browser: {error}")
            return 1
        finally:
            browser.close()
    print("social checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Schemathesis hooks for .ci/external-checks (loaded via SCHEMATHESIS_HOOKS).

The `browser` client is protected against CSRF the way Django does it: an
unsafe request must carry the `csrftoken` cookie and echo it in the
`X-CSRFToken` header, or it is refused with a non-JSON 403 before the
operation runs (the document says so in its introduction, not per operation).
Without these the fuzzer would only ever test that middleware, so every
browser request gets a valid pair. The CSRF refusal itself is covered by the
cargo integration tests.
"""

import schemathesis

# Django's format: 32 (or 64) characters from [a-zA-Z0-9].
CSRF_TOKEN = "ExternalChecksCsrfToken000000000"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRFToken"


@schemathesis.auth(refresh_interval=None)
class BrowserCsrf:
    """Adds the CSRF cookie and header to requests of the browser client."""

    def get(self, case, context):
        return CSRF_TOKEN

    def set(self, case, data, context):
        client = (case.path_parameters or {}).get("client")
        if client != "browser" and not context.operation.path.startswith("/_allauth/browser/"):
            return
        case.headers = {**(case.headers or {}), CSRF_HEADER: data}
        case.cookies = {**(case.cookies or {}), CSRF_COOKIE: data}

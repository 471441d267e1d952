#!/usr/bin/env python3
"""A Python client generated from the served document, against the running
server:

1. downloads BASE_URL/_allauth/openapi.json and runs `openapi-python-client
   generate --meta none` on it (the package goes to WORK_DIR/pyclient; no
   post hooks, so nothing outside the venv is needed); the operations below
   must have been generated;
2. imports the generated package and, with its functions and models only
   (no hand-written HTTP), as the `app` client: signs up with an email
   address and a password, verifies the address with the key from the mail
   (`email_verification_request`, `email_verification_view`,
   `email_verification_confirm`), signs out, signs in with the password and
   reads `auth/session`, which must be signed in as that address.

The session token comes back in `meta.session_token`; the generated
operations take it as their `x_session_token` parameter (`X-Session-Token`).
Mails are read from the `file` email backend's directory.

    python_client_check.py BASE_URL MAIL_DIR WORK_DIR

Exit 0 when every step answered as expected.
"""

from __future__ import annotations

import email
import email.policy
import importlib
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

PASSWORD = "a sturdy passphrase 42"
PACKAGE = "allauth_headless_client"
# Every operation the flow calls; generation must not have dropped any.
NEEDED = (
    "config_view",
    "signup_create",
    "email_verification_request",
    "email_verification_view",
    "email_verification_confirm",
    "email_list",
    "session_logout",
    "login_password",
    "session_view",
)


def fail(message: str) -> None:
    raise SystemExit(f"FAIL {message}")


# --- generation -------------------------------------------------------------------
def generate(base: str, work: Path) -> Path:
    """Generates the package into WORK/pyclient/PACKAGE; returns WORK/pyclient."""
    url = base.rstrip("/") + "/_allauth/openapi.json"
    out_root = work / "pyclient"
    shutil.rmtree(out_root, ignore_errors=True)
    out_root.mkdir(parents=True)
    doc = out_root / "openapi.json"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            doc.write_bytes(response.read())
    except (urllib.error.URLError, OSError) as error:
        fail(f"GET {url}: {error}")
    # No post hooks: the defaults run ruff, which is not installed here and
    # only formats.
    config = out_root / "config.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")
    generator = Path(sys.executable).with_name("openapi-python-client")
    cmd = [
        str(generator) if generator.exists() else "openapi-python-client",
        "generate",
        "--path", str(doc),
        "--output-path", str(out_root / PACKAGE),
        "--meta", "none",
        "--config", str(config),
    ]
    print(f"  {' '.join(cmd[:2])} --path openapi.json --meta none")
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    output = (run.stdout + run.stderr).strip()
    if output:
        print("\n".join("  | " + line for line in output.splitlines()))
    if run.returncode != 0:
        fail(f"openapi-python-client exited {run.returncode}")
    modules = {p.stem: p for p in (out_root / PACKAGE / "api").glob("*/*.py") if p.stem != "__init__"}
    missing = [op for op in NEEDED if op not in modules]
    if missing:
        fail(
            "openapi-python-client did not generate "
            + ", ".join(missing)
            + (" (see its warnings above)" if "Warning" in output else "")
        )
    models = len(list((out_root / PACKAGE / "models").glob("*.py"))) - 1
    warned = " with warnings (above)" if "Warning" in output else ", no warnings"
    print(f"  generated {len(modules)} operations and {models} models{warned}")
    return out_root


# --- the mail directory -----------------------------------------------------------
def mails_to(mail_dir: Path, address: str) -> list[tuple[str, str, str]]:
    """(file name, subject, text body) of the mails to ADDRESS, oldest first
    (the file backend names them <created_at>-<id>.eml)."""
    found = []
    if not mail_dir.is_dir():
        return found
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address.lower() not in str(message.get("To", "")).lower():
            continue
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        found.append((path.name, str(message.get("Subject", "")), text))
    return found


def wait_for_mail(mail_dir: Path, address: str, seen: int, timeout: float = 30.0):
    """The first mail to ADDRESS after the SEEN ones (the outbox delivers in
    the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mails = mails_to(mail_dir, address)
        if len(mails) > seen:
            return mails[seen]
        time.sleep(0.1)
    fail(f"no new mail to {address} in {mail_dir} within {timeout:.0f}s ({seen} there before)")


def verification_key(text: str) -> str:
    """The code (an indented line) or the key in the link of a verification
    mail: a `key` query parameter, else the link's last path segment (the
    fallback link is /accounts/confirm-email/{key}/)."""
    for line in text.splitlines():
        if line.startswith("    ") and line.strip():
            return line.strip()
    for line in text.splitlines():
        line = line.strip()
        if " " in line or "/" not in line:
            continue
        parts = urllib.parse.urlsplit(line)
        query = urllib.parse.parse_qs(parts.query)
        if query.get("key"):
            return query["key"][0]
        segments = [s for s in parts.path.split("/") if s]
        if segments:
            return urllib.parse.unquote(segments[-1])
    fail(f"no key or code in the verification mail:\n{text}")
    return ""


# --- the flow ---------------------------------------------------------------------
class Generated:
    """The generated package: its client, models and operation modules."""

    def __init__(self, root: Path, base: str) -> None:
        sys.path.insert(0, str(root))
        self.package = importlib.import_module(PACKAGE)
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")
        api = root / PACKAGE / "api"
        self.modules = {}
        for op in NEEDED:
            (path,) = api.glob(f"*/{op}.py")
            self.modules[op] = importlib.import_module(f"{PACKAGE}.api.{path.parent.name}.{op}")
        # Undocumented statuses raise errors.UnexpectedStatus.
        self.client = self.package.Client(base_url=base.rstrip("/"), raise_on_unexpected_status=True)
        # The path parameter's enum (its model is also called Client).
        self.app = self.models.Client.APP

    def call(self, op: str, expect: int, token: str | None = None, **kwargs):
        """Calls operation OP as the app client; its parsed answer, which must
        have status EXPECT."""
        if token is not None:
            kwargs["x_session_token"] = token
        try:
            response = self.modules[op].sync_detailed(self.app, client=self.client, **kwargs)
        except Exception as error:  # noqa: BLE001 - a parse or transport error is a failure
            fail(f"{op}: the generated function raised {type(error).__name__}: {error}")
        status = int(response.status_code)
        parsed = response.parsed
        print(f"  {op} -> {status} {type(parsed).__name__}")
        if status != expect:
            fail(f"{op}: {status}, expected {expect}: {response.content[:600]!r}")
        if parsed is None:
            fail(f"{op}: the generated client parsed nothing from {response.content[:600]!r}")
        return parsed

    def unset(self, value) -> bool:
        return isinstance(value, self.types.Unset)


def check_verified(gen: Generated, token: str, address: str) -> None:
    listed = gen.call("email_list", 200, token)
    entry = [e for e in listed.data if e.email == address]
    if not entry or not entry[0].verified:
        fail(f"email_list: {address} is not listed as verified: {[e.to_dict() for e in listed.data]}")
    print(f"   {address}: verified, primary={entry[0].primary}")


def main(argv: list[str]) -> None:
    if len(argv) != 4:
        raise SystemExit(__doc__)
    base, mail_dir, work = argv[1].rstrip("/"), Path(argv[2]), Path(argv[3])
    stamp = f"{int(time.time() * 1000)}"
    address = f"pyclient-{stamp}@example.org"
    username = f"pyclient{stamp}"

    print("-- generate the client")
    gen = Generated(generate(base, work), base)
    m = gen.models

    print("-- config")
    config = gen.call("config_view", 200)
    methods = list(config.data.account.login_methods or [])
    print(f"   login methods: {', '.join(str(x) for x in methods)}")
    if "email" not in [str(x) for x in methods]:
        fail(f"the server does not accept email logins ({methods}); the flow signs in by email")

    print(f"-- signup as {address}")
    # The main server's signup fields are allauth's default: username
    # required, email optional; the username is sent as well.
    try:
        response = gen.modules["signup_create"].sync_detailed(
            gen.app,
            client=gen.client,
            body=m.SignupInput(email=address, username=username, password=PASSWORD),
        )
    except Exception as error:  # noqa: BLE001
        fail(f"signup_create: the generated function raised {type(error).__name__}: {error}")
    status, answer = int(response.status_code), response.parsed
    print(f"  signup_create -> {status} {type(answer).__name__}")
    token = None if gen.unset(answer.meta.session_token) else answer.meta.session_token
    if not token:
        fail("signup_create: no meta.session_token for the app client")
    mails_before = 0
    if status == 200:
        # email_verification = "optional" (or "none"): signed in at once.
        if answer.data.user.email != address:
            fail(f"signup_create: signed in as {answer.data.user.email!r}, not {address!r}")
        print(f"   signed in at once as user {answer.data.user.id} (verification is not mandatory)")
        # Under "optional" the signup sends a verification mail too; wait
        # for it so that the requested one below is told apart.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not mails_to(mail_dir, address):
            time.sleep(0.1)
        mails_before = len(mails_to(mail_dir, address))
        print(f"   mails to {address} after signup: {mails_before}")

        print("-- request the verification mail")
        gen.call(
            "email_verification_request", 200, token, body=m.EmailAddressInput(email=address)
        )
        name, subject, text = wait_for_mail(mail_dir, address, mails_before)
    elif status == 401:
        # email_verification = "mandatory": the verify_email stage is pending.
        pending = [f.id for f in answer.data.flows if not gen.unset(f.is_pending) and f.is_pending]
        print(f"   pending: {', '.join(str(p) for p in pending)}")
        if "verify_email" not in [str(p) for p in pending]:
            fail(f"signup_create: 401 without a pending verify_email stage: {response.content[:600]!r}")
        name, subject, text = wait_for_mail(mail_dir, address, 0)
    else:
        fail(f"signup_create: {status}: {response.content[:600]!r}")
    key = verification_key(text)
    print(f"   mail {name} ({subject!r}): key {key[:12]}…")

    print("-- verify the address")
    info = gen.call("email_verification_view", 200, token, x_email_verification_key=key)
    if info.data.email != address:
        fail(f"email_verification_view: the key is for {info.data.email!r}, not {address!r}")
    # Signed in: 200. Ending the verify_email stage of a signup without
    # logging in (mandatory verification, login_on_email_confirmation off,
    # allauth's default): 401.
    signed_in = status == 200
    confirmed = gen.call("email_verification_confirm", 200 if signed_in else 401, token, body=m.VerifyEmailInput(key=key))
    if signed_in:
        if confirmed.data.user.email != address:
            fail(f"email_verification_confirm: signed in as {confirmed.data.user.email!r}")
        if not gen.unset(confirmed.meta.session_token):
            token = confirmed.meta.session_token
        check_verified(gen, token, address)

        print("-- logout")
        out = gen.call("session_logout", 401, token)
        if out.meta.is_authenticated:
            fail("session_logout: meta.is_authenticated is still true")
        old = gen.modules["session_view"].sync_detailed(gen.app, client=gen.client, x_session_token=token)
        print(f"  session_view (old token) -> {int(old.status_code)} {type(old.parsed).__name__}")
        if int(old.status_code) not in (401, 410):
            fail(f"session_view with the token of the ended session: {int(old.status_code)}, expected 401 or 410")
    else:
        if confirmed.meta.is_authenticated:
            fail("email_verification_confirm: 401 says is_authenticated")
        print("   verified; not signed in by it (login_on_email_confirmation is off): no logout needed")

    print("-- login with the password")
    login = gen.call("login_password", 200, body=m.LoginInput(email=address, password=PASSWORD))
    if gen.unset(login.meta.session_token) or not login.meta.session_token:
        fail("login_password: no meta.session_token for the app client")
    if login.meta.session_token == token:
        fail("login_password: the new session has the old session's token")
    token = login.meta.session_token

    print("-- session")
    session = gen.call("session_view", 200, token)
    user = session.data.user
    if not session.meta.is_authenticated:
        fail("session_view: meta.is_authenticated is false")
    if user.email != address:
        fail(f"session_view: signed in as {user.email!r}, expected {address!r}")
    kinds = [str(getattr(method, "method", "?")) for method in session.data.methods]
    if "password" not in kinds:
        fail(f"session_view: methods {kinds} do not include the password login")
    check_verified(gen, token, address)
    print(f"   authenticated as {user.email} (user {user.id}, username {user.username}), methods: {', '.join(kinds)}")
    print("OK python client: signup, verification, logout, login and session through the generated client")


if __name__ == "__main__":
    main(sys.argv)

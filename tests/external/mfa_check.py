#!/usr/bin/env python3
"""MFA from outside the Rust tests, against a running server:

1. `app` client over plain HTTP: TOTP set up and used with codes from
   pyotp; recovery codes; a passkey made by a software authenticator built
   on python-fido2 (CBOR, COSE) and `cryptography` (P-256), then a passkey
   login and a second factor with it.
2. `browser` client in headless Chromium (driven by Playwright) with the
   DevTools virtual authenticator: the page tests/external/webauthn_page.html,
   served at the server's origin, calls `navigator.credentials.create/get`
   with our options (`PublicKeyCredential.parse…FromJSON`) and posts
   `toJSON()` back: add a passkey, log in with it, use it as second factor.

    mfa_check.py BASE_URL CHROMIUM

Exit 0 when every step answered as expected.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor
from fido2.cose import ES256

PASSWORD = "a sturdy passphrase 42"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class App:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/_allauth/app/v1/"
        self.token: str | None = None

    def call(self, method: str, path: str, body=None, expect: int | None = None):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["X-Session-Token"] = self.token
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        payload = json.loads(raw)
        token = (payload.get("meta") or {}).get("session_token")
        if token:
            self.token = token
        print(f"  {method} {path} -> {status}")
        if expect is not None and status != expect:
            raise SystemExit(f"FAIL {method} {path}: {status}, expected {expect}: {payload}")
        return status, payload


class SoftAuthenticator:
    """A P-256 authenticator with "none" attestation that verifies its user."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.counter = 0
        self.user_handle = b""

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict) -> dict:
        public_key = options["publicKey"]
        self.user_handle = unb64(public_key["user"]["id"])
        client_data = self._client_data("webauthn.create", public_key["challenge"])
        cose_key = cbor.encode(dict(ES256.from_cryptography_key(self.key.public_key())))
        auth_data = (
            hashlib.sha256(public_key["rp"]["id"].encode()).digest()
            + bytes([0x01 | 0x04 | 0x40])
            + struct.pack(">I", self.counter)
            + bytes(16)
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + cose_key
        )
        attestation = cbor.encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {"credProps": {"rk": True}},
            "authenticatorAttachment": "platform",
        }

    def get(self, options: dict) -> dict:
        public_key = options["publicKey"]
        client_data = self._client_data("webauthn.get", public_key["challenge"])
        self.counter += 1
        auth_data = (
            hashlib.sha256(public_key["rpId"].encode()).digest()
            + bytes([0x01 | 0x04])
            + struct.pack(">I", self.counter)
        )
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }


def pending(body: dict, flow: str) -> dict | None:
    for entry in body.get("data", {}).get("flows", []):
        if entry.get("id") == flow and entry.get("is_pending"):
            return entry
    return None


def app_client(base: str) -> None:
    print("-- app client: pyotp and a python-fido2 software authenticator")
    app = App(base)
    name = "py" + b64(os.urandom(6)).lower().replace("-", "x").replace("_", "y")
    # No address: an unverified one would block adding a second factor.
    app.call("POST", "auth/signup", {"username": name, "password": PASSWORD}, 200)
    app.call("POST", "auth/reauthenticate", {"password": PASSWORD}, 200)

    _, body = app.call("GET", "account/authenticators/totp", expect=404)
    totp = pyotp.TOTP(body["meta"]["secret"])
    app.call("POST", "account/authenticators/totp", {"code": totp.now()}, 200)
    _, body = app.call("GET", "account/authenticators/recovery-codes", expect=200)
    codes = body["data"]["unused_codes"]
    assert len(codes) == 10, body

    _, body = app.call("GET", "account/authenticators/webauthn?passwordless", expect=200)
    rp_id = body["data"]["creation_options"]["publicKey"]["rp"]["id"]
    key = SoftAuthenticator(f"https://{rp_id}")
    _, body = app.call(
        "POST", "account/authenticators/webauthn", {"credential": key.create(body["data"]["creation_options"])}, 200
    )
    assert body["data"]["is_passwordless"] is True, body

    app.call("DELETE", "auth/session", expect=401)
    app.token = None
    _, body = app.call("POST", "auth/login", {"username": name, "password": PASSWORD}, 401)
    flow = pending(body, "mfa_authenticate")
    assert flow and flow["types"] == ["recovery_codes", "totp", "webauthn"], body
    # The activation used this step's code; the next step's is within the tolerance.
    _, body = app.call("POST", "auth/2fa/authenticate", {"code": totp.at(time.time() + 30)}, 200)
    assert body["data"]["methods"][-1]["type"] == "totp", body
    app.call("POST", "auth/2fa/reauthenticate", {"code": codes[0]}, 200)
    app.call("POST", "auth/2fa/reauthenticate", {"code": codes[0]}, 400)

    app.call("DELETE", "auth/session", expect=401)
    app.token = None
    _, body = app.call("GET", "auth/webauthn/login", expect=200)
    _, body = app.call(
        "POST", "auth/webauthn/login", {"credential": key.get(body["data"]["request_options"])}, 200
    )
    methods = body["data"]["methods"]
    assert len(methods) == 1 and methods[0]["type"] == "webauthn", body
    assert methods[0]["passwordless"] is True, body

    app.call("DELETE", "auth/session", expect=401)
    app.token = None
    app.call("POST", "auth/login", {"username": name, "password": PASSWORD}, 401)
    _, body = app.call("GET", "auth/webauthn/authenticate", expect=200)
    app.call("POST", "auth/webauthn/authenticate", {"credential": key.get(body["data"]["request_options"])}, 200)


def browser_client(base: str, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    print("-- browser client: headless Chromium with a virtual authenticator")
    # `localhost` is a secure context over http and the relying party id.
    origin = base.rstrip("/").replace("127.0.0.1", "localhost")
    page_html = (Path(__file__).parent / "webauthn_page.html").read_text()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context()
            page = context.new_page()
            page.route(
                origin + "/webauthn-check",
                lambda route: route.fulfill(status=200, content_type="text/html", body=page_html),
            )
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            page.goto(origin + "/webauthn-check")
            steps = page.evaluate("run()")
            for step in steps:
                print(f"  {step}: ok")
        finally:
            browser.close()


def main() -> int:
    base, chromium = sys.argv[1], sys.argv[2]
    app_client(base)
    browser_client(base, chromium)
    print("mfa checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Verifies this server's JWTs with an independent library (PyJWT), the way a
resource server in Python would (docs/jwt.md), against a server running the
JWT strategy with RS256.

    jwt_check.py BASE_URL

1. signs a user up and logs in as an app client: the answer has
   `meta.access_token` and `meta.refresh_token`;
2. PyJWKClient fetches GET /_allauth/app/v1/tokens/jwks, picks the key by the
   token's `kid`, and jwt.decode verifies the signature and `exp` with the
   algorithm pinned to RS256; the claims are allauth's;
3. the refresh token is exchanged (rotation): the new access token verifies
   the same way and names the same session;
4. negative controls, so that the check can fail: a token with one changed
   signature byte and an HS256 token signed with the published modulus
   (algorithm confusion) do not verify with PyJWT, and this server answers
   both as anonymous.

Exit status 0 when everything holds; the reason otherwise.
"""

import base64
import json
import secrets
import sys
import urllib.error
import urllib.request

import jwt  # PyJWT, installed by .ci/install

CLAIMS = {"iat", "exp", "sid", "jti", "token_use", "sub"}


def call(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def expect(condition, message):
    if not condition:
        sys.exit(f"jwt check: {message}")


def verify(jwks, token):
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"])


def main(base):
    app = f"{base.rstrip('/')}/_allauth/app/v1"
    username = f"jwt{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(18)
    status, body = call(
        "POST",
        f"{app}/auth/signup",
        {"username": username, "email": f"{username}@example.org", "password": password},
    )
    expect(status in (200, 401), f"signup answered {status}: {body}")
    status, body = call("POST", f"{app}/auth/login", {"username": username, "password": password})
    expect(status == 200, f"login answered {status}: {body}")
    meta = body.get("meta", {})
    access, refresh = meta.get("access_token"), meta.get("refresh_token")
    expect(isinstance(access, str) and isinstance(refresh, str), f"no tokens in meta: {meta}")

    jwks = jwt.PyJWKClient(f"{app}/tokens/jwks", cache_keys=True)
    claims = verify(jwks, access)
    expect(CLAIMS <= claims.keys(), f"claims {sorted(claims)} lack some of {sorted(CLAIMS)}")
    expect(claims["token_use"] == "access", f"token_use {claims['token_use']!r}")
    expect(claims["sub"] == str(body["data"]["user"]["id"]), "sub is not the user id")
    expect(claims["exp"] - claims["iat"] == 300, "the access token does not live 300 s")
    expect(jwt.get_unverified_header(access).get("alg") == "RS256", "alg is not RS256")

    status, body = call("GET", f"{app}/auth/session", headers={"Authorization": f"Bearer {access}"})
    expect(status == 200, f"the server refused its own access token: {status} {body}")

    status, body = call("POST", f"{app}/tokens/refresh", {"refresh_token": refresh})
    expect(status == 200, f"refresh answered {status}: {body}")
    renewed = verify(jwks, body["data"]["access_token"])
    expect(renewed["sid"] == claims["sid"], "the refreshed token names another session")
    expect(renewed["jti"] != claims["jti"], "the refreshed token reuses the jti")
    expect(isinstance(body["data"].get("refresh_token"), str), "rotation handed out no refresh token")

    # Negative controls.
    head, payload, signature = access.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    tampered = ".".join([head, payload, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])
    try:
        verify(jwks, tampered)
    except jwt.InvalidSignatureError:
        pass
    else:
        sys.exit("jwt check: PyJWT accepted a token with a changed signature")
    modulus = jwks.get_signing_key_from_jwt(access).key.public_numbers().n
    hmac_key = modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")
    confused = jwt.encode(
        claims, hmac_key, algorithm="HS256", headers={"kid": jwt.get_unverified_header(access)["kid"]}
    )
    for what, token in (("changed signature", tampered), ("HS256 confusion", confused)):
        status, body = call("GET", f"{app}/auth/session", headers={"Authorization": f"Bearer {token}"})
        expect(
            status == 401 and body.get("meta", {}).get("is_authenticated") is False,
            f"{what}: the server answered {status} {body}",
        )
    print(f"   PyJWT {jwt.__version__} verified the access tokens with the published JWKS")


if __name__ == "__main__":
    main(sys.argv[1])

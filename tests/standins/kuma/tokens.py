"""Tokens of the kuma-cp stand-in (test double, NOT Kuma).

kuma.md §2 "Dataplane token endpoint": the response is a "`text/plain` raw JWT"; "Tokens are never
stored.  The per-mesh signing key is Secret `dataplane-token-signing-key-<mesh>-1`, created with the
mesh"; "Revocation: Secret `dataplane-token-revocations-<mesh>` holding comma-separated JTIs,
base64-encoded"; "if empty, **10 years**".  §2 "Auth for API clients": admin user token in GlobalSecret
`admin-user-token`, signing key GlobalSecret `user-token-signing-key-<n>`, revocations in GlobalSecret
`user-token-revocations`.

Stand-in differences (documented in README.md):
* JWTs are signed with **HS256** (stdlib HMAC-SHA256) and a random 32-byte key; Kuma signs with RS256
  and an RSA key.  The signing-key secret's `data` is base64 of that key, not a PEM.
* Header `{"alg":"HS256","kid":"<serial>","typ":"JWT"}`; the kid is the signing key serial.
* Claims: dataplane `Name`, `Mesh`, `Tags`, `Type` (+ `jti`, `iat`, `nbf`, `exp`); user `Name`, `Groups`.
  Kuma's claim names are UNCONFIRMED.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
import uuid

TEN_YEARS = 10 * 365 * 24 * 3600
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|\u00b5s|ms|s|m|h)")
UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class TokenError(Exception):
    """A token could not be verified (the message says why)."""


def parse_duration(text):
    """Go duration (`720h`, `1h30m`, `90s`) -> seconds; ValueError when malformed."""
    if not text:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    for match in DURATION.finditer(text):
        if match.start() != pos:
            raise ValueError("invalid duration %r" % text)
        total += float(match.group(1)) * UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError("invalid duration %r" % text)
    return total


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_signing_key():
    """The `data` of a signing-key secret: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(32)).decode()


def sign(claims, key_b64, kid):
    header = {"alg": "HS256", "kid": str(kid), "typ": "JWT"}
    head = _b64url(json.dumps(header, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(base64.b64decode(key_b64), ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (head, body, _b64url(mac))


def decode(token):
    """(header, claims, signing input, signature) without checking anything; TokenError if malformed."""
    try:
        head, body, mac = token.strip().split(".")
        return (json.loads(_unb64url(head)), json.loads(_unb64url(body)),
                ("%s.%s" % (head, body)).encode(), _unb64url(mac))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError("could not parse token: %s" % exc) from None


def verify(token, key_lookup, revoked=frozenset(), now=None):
    """Check signature (key from ``key_lookup(kid)``, None when unknown), expiry and revocation;
    returns the claims.  "signature is invalid" is Kuma's text (kuma.md §7 item 2); others UNCONFIRMED."""
    header, claims, signing_input, mac = decode(token)
    if header.get("alg") != "HS256":
        raise TokenError("unsupported signing algorithm %r" % header.get("alg"))
    key_b64 = key_lookup(str(header.get("kid", "")))
    if key_b64 is None:
        raise TokenError("there is no signing key with KID %s" % header.get("kid"))
    expected = hmac.new(base64.b64decode(key_b64), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise TokenError("could not parse token: signature is invalid")
    now = time.time() if now is None else now
    if claims.get("exp") is not None and now >= claims["exp"]:
        raise TokenError("could not parse token: token has invalid claims: token is expired")
    if claims.get("nbf") is not None and now < claims["nbf"] - 60:
        raise TokenError("could not parse token: token has invalid claims: token is not valid yet")
    if claims.get("jti") in revoked:
        raise TokenError("token is revoked")
    return claims


def registered_claims(valid_for):
    now = int(time.time())
    return {"jti": str(uuid.uuid4()), "iat": now, "nbf": now - 60, "exp": now + int(valid_for)}


def revoked_jtis(secret_data):
    """kuma.md §2: revocations are "comma-separated JTIs, base64-encoded"."""
    if not secret_data:
        return frozenset()
    try:
        text = base64.b64decode(secret_data).decode()
    except (binascii.Error, UnicodeDecodeError):
        return frozenset()
    return frozenset(jti.strip() for jti in text.split(",") if jti.strip())


def check_dataplane_binding(claims, dataplane, proxy_type="dataplane"):
    """kuma.md §3 "Token binding: if the token has tags, a DP must carry **all** of its `kuma.io/service`
    values in that list; with `name`, the DP name must match".  Read here as: every `kuma.io/service`
    of the Dataplane (inbounds, gateway) is in the token's list (reading UNCONFIRMED).  Texts UNCONFIRMED."""
    if claims.get("Type", "dataplane") != proxy_type:
        raise TokenError("invalid token type: expected %s, got %s" % (proxy_type, claims.get("Type")))
    if claims.get("Mesh") != dataplane.get("mesh"):
        raise TokenError("proxy mesh %s is different than the token mesh %s" % (dataplane.get("mesh"), claims.get("Mesh")))
    if claims.get("Name") and claims["Name"] != dataplane.get("name"):
        raise TokenError("proxy name %s is different than the token name %s" % (dataplane.get("name"), claims["Name"]))
    allowed = (claims.get("Tags") or {}).get("kuma.io/service")
    if allowed:
        net = dataplane.get("networking") or {}
        services = [(item.get("tags") or {}).get("kuma.io/service") for item in net.get("inbound") or []]
        if net.get("gateway"):
            services.append((net["gateway"].get("tags") or {}).get("kuma.io/service"))
        for service in services:
            if service not in allowed:
                raise TokenError("which is not allowed with this token. Allowed values in token are %s"
                                 " (kuma.io/service: %s)" % (allowed, service))

"""Access tokens verified on the fast path (adapters.security.Tokens._issued_here) decode exactly as PyJWT decodes
them, and everything else still goes PyJWT's way: the same claims, the same refusals."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from adapters.security import Tokens
from persistence.errors import Unauthorized

SECRET = "s" * 64


def pyjwt_claims(tokens: Tokens, token: str, now: datetime) -> object:
    claims = jwt.decode(token, SECRET, algorithms=["HS256"],
                        options={"require": ["sub", "exp", "iat", "jti"], "verify_iat": False})
    return tokens._access_claims(claims, now)


@pytest.mark.parametrize("session", [True, False])
def test_our_tokens_take_the_fast_path_and_decode_as_pyjwt_does(session: bool) -> None:
    tokens = Tokens(SECRET, "HS256", timedelta(minutes=15))
    now = datetime.now(UTC)
    token = tokens.issue_access(uuid.uuid4(), uuid.uuid4() if session else None, now)
    assert tokens._issued_here(token) is not None
    assert tokens.decode_access(token, now) == pyjwt_claims(tokens, token, now)


def test_anything_else_goes_pyjwts_way() -> None:
    tokens = Tokens(SECRET, "HS256", timedelta(minutes=15))
    now = datetime.now(UTC)
    token = tokens.issue_access(uuid.uuid4(), uuid.uuid4(), now)
    head, body, sig = token.split(".")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    refused = [f"{head}.{body}.{flipped}", f"{head}.{body}.{sig}!", f"{head}.{body[:-2]}.{sig}", f"{head}.{body}",
               "a.b.c", "", token + ".x", token + "é",
               jwt.encode({"sub": "x", "iat": 1, "exp": int(time.time()) + 60, "jti": "j", "typ": "access"},
                          "another secret of enough length for hs256 keys", algorithm="HS256")]
    for bad in refused:
        assert tokens._issued_here(bad) is None
        with pytest.raises(Unauthorized):
            tokens.decode_access(bad, now)
    # PyJWT accepts a padded signature; so do we, on its path.
    assert tokens._issued_here(f"{token}=") is None
    assert tokens.decode_access(f"{token}=", now) == tokens.decode_access(token, now)
    # Claims we never write (an audience, a string expiry): PyJWT decides, as before.
    exp = int(time.time()) + 60
    audience = jwt.encode({"sub": "x", "iat": 1, "exp": exp, "jti": "j", "typ": "access", "aud": "them"}, SECRET,
                          algorithm="HS256")
    assert tokens._issued_here(audience) is None
    with pytest.raises(Unauthorized):
        tokens.decode_access(audience, now)
    textual = jwt.encode({"sub": str(uuid.uuid4()), "iat": 1, "exp": str(exp), "jti": "j", "typ": "access"}, SECRET,
                         algorithm="HS256")
    assert tokens._issued_here(textual) is None
    assert tokens.decode_access(textual, now) == pyjwt_claims(tokens, textual, now)


def test_expired_and_refresh_typed_tokens_are_refused_with_the_same_reason() -> None:
    tokens = Tokens(SECRET, "HS256", timedelta(minutes=15))
    now = datetime.now(UTC)
    old = tokens.issue_access(uuid.uuid4(), None, now - timedelta(hours=1))
    with pytest.raises(Unauthorized, match="token expired"):
        tokens.decode_access(old, now)
    # Valid on PyJWT's clock, expired on the caller's (a test clock ahead): refused on the fast path too.
    fresh = tokens.issue_access(uuid.uuid4(), None, now)
    assert tokens._issued_here(fresh) is not None
    with pytest.raises(Unauthorized, match="token expired"):
        tokens.decode_access(fresh, now + timedelta(hours=1))
    typed = jwt.encode({"sub": str(uuid.uuid4()), "iat": 1, "exp": int(time.time()) + 60, "jti": "j",
                        "typ": "refresh"}, SECRET, algorithm="HS256")
    assert tokens._issued_here(typed) is not None  # authentic, with our claims: the typ check refuses it
    with pytest.raises(Unauthorized, match="invalid token"):
        tokens.decode_access(typed, now)

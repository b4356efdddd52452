"""Password hashing (argon2id) and access-token signing (JWT), configured by the caller."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
import orjson
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from persistence.errors import Unauthorized


class Passwords:
    """argon2id hashing. Hashing and verifying take ~100 ms of CPU by design, so they run in worker threads
    (argon2-cffi releases the GIL), at most `parallel` at once: a burst of logins never stalls the event loop
    that serves everyone else."""

    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4,
                 parallel: int = 2) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        self._slots = asyncio.Semaphore(parallel)
        # Verifying against a dummy hash when the account does not exist keeps the timing of a
        # failed login the same whether or not the email is known.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        return self._hasher.check_needs_rehash(stored)


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID | None
    jti: str
    issued_at: datetime
    expires_at: datetime


_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_REQUIRED_CLAIMS = (("sub", str), ("iat", int), ("exp", int), ("jti", str), ("typ", str))
_ISSUED_CLAIMS = frozenset({"sub", "iat", "exp", "jti", "typ", "sid"})


class Tokens:
    """Short-lived JWT access tokens (sub = user id, sid = sign-in session) and opaque refresh tokens."""

    def __init__(self, secret: str, algorithm: str, access_ttl: timedelta) -> None:
        self._secret = secret
        self._algorithm = algorithm
        self.access_ttl = access_ttl
        # The fast path of decode_access (HMAC algorithms only): the header segment every token we issue
        # starts with, and the HMAC key and digest.
        self._digest = _HMAC_DIGESTS.get(algorithm)
        self._key = secret.encode()
        # PyJWT's header: sorted keys, no spaces (a token whose header differs goes PyJWT's way, as before).
        header = orjson.dumps({"alg": algorithm, "typ": "JWT"}, option=orjson.OPT_SORT_KEYS)
        self._header = base64.urlsafe_b64encode(header).rstrip(b"=").decode()

    def issue_access(self, user_id: uuid.UUID, session_id: uuid.UUID | None, now: datetime) -> str:
        claims: dict[str, Any] = {
            "sub": str(user_id), "iat": int(now.timestamp()), "exp": int((now + self.access_ttl).timestamp()),
            "jti": uuid.uuid4().hex, "typ": "access",
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def decode_access(self, token: str, now: datetime) -> AccessClaims:
        claims = self._issued_here(token)
        if claims is not None:
            return self._access_claims(claims, now)
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[self._algorithm],
                options={"require": ["sub", "exp", "iat", "jti"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
        return self._access_claims(claims, now)

    def _issued_here(self, token: str) -> dict[str, Any] | None:
        """The claims of a token exactly as issue_access writes them, verified without PyJWT; None for anything
        else, which PyJWT then decodes (or refuses) as before. PyJWT's generic checks (the header's JSON, each
        segment's alphabet and padding, the claims' types) were ~0.09 ms a token, most of a socket's `auth`;
        here the header must be our own byte for byte, the signature segment must be the canonical encoding of
        the HMAC over the first two (compared in constant time), and the claims must be the ones we write, with
        the types we write, unexpired on PyJWT's clock."""
        if self._digest is None or not token.isascii():
            return None
        head, _, rest = token.partition(".")
        body, _, signature = rest.partition(".")
        if head != self._header or not body or not signature:
            return None
        mac = hmac.new(self._key, f"{head}.{body}".encode(), self._digest).digest()
        if not hmac.compare_digest(signature.encode(), base64.urlsafe_b64encode(mac).rstrip(b"=")):
            return None
        try:
            claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if type(claims) is not dict or not claims.keys() <= _ISSUED_CLAIMS or \
                any(type(claims.get(k)) is not t for k, t in _REQUIRED_CLAIMS) or \
                type(claims.get("sid", "")) is not str or claims["exp"] <= time.time():
            return None  # PyJWT decides (an expired token: "token expired", as before)
        return claims

    @staticmethod
    def _access_claims(claims: dict[str, Any], now: datetime) -> AccessClaims:
        # PyJWT compares `exp` with its own clock; comparing with the caller's too keeps tests honest.
        if claims.get("typ") != "access" or int(claims["exp"]) <= int(now.timestamp()):
            raise Unauthorized("token expired" if claims.get("typ") == "access" else "invalid token")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
            session_id = uuid.UUID(str(claims["sid"])) if claims.get("sid") else None
        except ValueError:
            raise Unauthorized("invalid token") from None
        return AccessClaims(
            user_id=user_id, session_id=session_id, jti=str(claims["jti"]),
            issued_at=datetime.fromtimestamp(int(claims["iat"]), now.tzinfo),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), now.tzinfo),
        )

    @staticmethod
    def new_refresh_secret() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash_refresh(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

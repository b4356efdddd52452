"""Password hashing (argon2id) and access-token signing (JWT), configured by the caller."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
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


class Tokens:
    """Short-lived JWT access tokens (sub = user id, sid = sign-in session) and opaque refresh tokens."""

    def __init__(self, secret: str, algorithm: str, access_ttl: timedelta) -> None:
        self._secret = secret
        self._algorithm = algorithm
        self.access_ttl = access_ttl

    def issue_access(self, user_id: uuid.UUID, session_id: uuid.UUID | None, now: datetime) -> str:
        claims: dict[str, Any] = {
            "sub": str(user_id), "iat": int(now.timestamp()), "exp": int((now + self.access_ttl).timestamp()),
            "jti": uuid.uuid4().hex, "typ": "access",
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def decode_access(self, token: str, now: datetime) -> AccessClaims:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[self._algorithm],
                options={"require": ["sub", "exp", "iat", "jti"], "verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid token") from None
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

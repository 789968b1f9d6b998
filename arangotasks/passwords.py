"""Password hashes of the users file: argon2id in PHC format (``$argon2id$v=19$m=...``).

Plain-text passwords are still accepted (with a warning at start); a value in PHC format is a hash.
Verifying a hash costs tens of milliseconds of CPU and 64 MiB, so it runs in a thread, a few at a
time, and a password that verified once is remembered as a keyed digest for the next requests
(Basic authentication sends the password with every request).
"""

import asyncio
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASH_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")
# Concurrent verifications: each takes the hash's memory cost (64 MiB by default).
_VERIFY_CONCURRENCY = 2


def is_hash(password: str) -> bool:
    return password.startswith(HASH_PREFIXES)


def hash_password(password: str) -> str:
    """A new argon2id hash of ``password`` (argon2-cffi's recommended parameters)."""
    return PasswordHasher().hash(password)


def check_hash_format(value: str) -> str | None:
    """Why ``value`` is not a usable argon2 hash, or ``None`` when it is one."""
    try:
        PasswordHasher().check_needs_rehash(value)  # parses the PHC string
    except (InvalidHashError, ValueError) as exc:
        return str(exc) or "invalid hash"
    return None


def _encode(text: str) -> bytes:
    # surrogatepass: a lone surrogate from a JSON escape is a wrong password, not a crash.
    return text.encode(errors="surrogatepass")


class PasswordChecker:
    """Compares a given password with a user's stored one, plain or hashed."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)  # per process: the digests below mean nothing elsewhere
        self._verified: dict[str, bytes] = {}  # stored hash -> digest of the password that matched
        self._slots = asyncio.Semaphore(_VERIFY_CONCURRENCY)

    def _digest(self, given: str) -> bytes:
        return hmac.new(self._key, _encode(given), hashlib.sha256).digest()

    async def matches(self, stored: str, given: str) -> bool:
        if not is_hash(stored):
            return hmac.compare_digest(_encode(stored), _encode(given))
        digest = self._digest(given)
        known = self._verified.get(stored)
        if known is not None and hmac.compare_digest(known, digest):
            return True
        async with self._slots:
            ok = await asyncio.to_thread(_verify, stored, given)
        if ok:
            self._verified[stored] = digest  # bounded: one entry per hashed user
        return ok


def _verify(stored: str, given: str) -> bool:
    try:
        return PasswordHasher().verify(stored, _encode(given))
    except (VerificationError, InvalidHashError):
        return False

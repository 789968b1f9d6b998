"""HTTP Basic and JWT authentication as ArangoDB does it (§1.7)."""

import base64
import binascii
import hmac
import time
from dataclasses import dataclass

import jwt

from arangotasks.config import Access, AccessConfig
from arangotasks.errors import ArangoError, ErrorCode


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``name`` is "" for the superuser JWT and with authentication off."""

    name: str
    superuser: bool
    writable: bool
    databases: frozenset[str] | None = None  # None = every database

    def may_use(self, database: str) -> bool:
        return self.databases is None or database in self.databases

    def may_see(self, owner: str) -> bool:
        """ArangoDB's ``Task::authorized``: a superuser, or the task's creator."""
        return self.superuser or owner == self.name


ANONYMOUS_SUPERUSER = Principal("", superuser=True, writable=True)


def not_authorized() -> ArangoError:
    return ArangoError(ErrorCode.FORBIDDEN, "not authorized to execute this request", status=401)


def _check_password(expected: str, given: str) -> bool:
    # surrogatepass: a lone surrogate from a JSON escape is a wrong password, not a crash.
    return hmac.compare_digest(
        expected.encode(errors="surrogatepass"), given.encode(errors="surrogatepass")
    )


def login(access: AccessConfig, username: str, password: str) -> Principal | None:
    user = access.users.get(username)
    if user is None or not _check_password(user.password, password):
        return None
    return Principal(
        user.name,
        superuser=user.superuser,
        writable=user.superuser or user.access is Access.READ_WRITE,
        databases=None if user.superuser else user.databases,
    )


def issue_jwt(access: AccessConfig, username: str, ttl: float) -> str:
    now = int(time.time())
    claims = {"iss": "arangodb", "iat": now, "exp": now + int(ttl), "preferred_username": username}
    return jwt.encode(claims, access.jwt_secret, algorithm="HS256")


def _from_jwt(access: AccessConfig, token: str) -> Principal | None:
    try:
        claims = jwt.decode(
            token,
            access.jwt_secret,
            algorithms=["HS256"],
            issuer="arangodb",
            options={"require": ["iss", "exp"]},
        )
    except jwt.PyJWTError:
        return None
    username = claims.get("preferred_username")
    if username is None:
        # A token signed with the server secret and no user is a superuser (§1.7).
        return ANONYMOUS_SUPERUSER
    if not isinstance(username, str):
        return None
    user = access.users.get(username)
    if user is None:
        return None
    return Principal(
        user.name,
        superuser=user.superuser,
        writable=user.superuser or user.access is Access.READ_WRITE,
        databases=None if user.superuser else user.databases,
    )


def authenticate(access: AccessConfig, header: str | None) -> Principal:
    """The caller named by an ``Authorization`` header; raise 401/11 when that fails."""
    if not header:
        raise not_authorized()
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    principal: Principal | None = None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise not_authorized() from None
        username, sep, password = decoded.partition(":")
        if sep:
            principal = login(access, username, password)
    elif scheme == "bearer":
        principal = _from_jwt(access, value.strip())
    if principal is None:
        raise not_authorized()
    return principal

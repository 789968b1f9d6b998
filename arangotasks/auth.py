"""HTTP Basic and JWT authentication as ArangoDB does it (§1.7)."""

import base64
import binascii
import math
import time
from dataclasses import dataclass

import jwt

from arangotasks.config import Access, AccessConfig, Settings, User
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.passwords import PasswordChecker
from arangotasks.throttle import LoginThrottle


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


def too_many_logins(wait: float) -> ArangoError:
    error = ArangoError(
        ErrorCode.TOO_MANY_REQUESTS,
        f"too many failed logins; try again in {math.ceil(wait)} s",
    )
    error.headers["Retry-After"] = str(math.ceil(wait))
    return error


def _principal(user: User) -> Principal:
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


def _from_jwt(access: AccessConfig, token: str, max_ttl: float) -> Principal | None:
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
    # A stolen token must not be good for years: its lifetime (exp - iat, or what is left of it
    # when it has no iat) is at most max_ttl. PyJWT has checked that exp is a number.
    exp, iat = claims["exp"], claims.get("iat")
    start = iat if isinstance(iat, int | float) and not isinstance(iat, bool) else time.time()
    if exp - start > max_ttl:
        return None
    username = claims.get("preferred_username")
    if username is None:
        # A token signed with the server secret and no user is a superuser (§1.7).
        return ANONYMOUS_SUPERUSER
    if not isinstance(username, str):
        return None
    user = access.users.get(username)
    return None if user is None else _principal(user)


class Authenticator:
    """Checks credentials: passwords (plain or hashed), JWTs, and the failed-login throttle."""

    def __init__(self, access: AccessConfig, settings: Settings) -> None:
        self.access = access
        self._jwt_max_ttl = settings.jwt_max_ttl
        self._checker = PasswordChecker()
        self._throttle = LoginThrottle(settings.login_burst, settings.login_rate)

    async def login(self, username: str, password: str, address: str) -> Principal | None:
        """The user named ``username`` if ``password`` is theirs; 429 when throttled."""
        user = self.access.users.get(username)
        # Unknown names get no bucket of their own (anyone could invent millions of them).
        keys = [("addr", address)] + ([("user", username)] if user is not None else [])
        wait = self._throttle.retry_after(keys)
        if wait > 0:
            raise too_many_logins(wait)
        if user is not None and await self._checker.matches(user.password, password):
            return _principal(user)
        self._throttle.failed(keys)
        return None

    async def authenticate(self, header: str | None, address: str) -> Principal:
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
                principal = await self.login(username, password, address)
        elif scheme == "bearer":
            principal = _from_jwt(self.access, value.strip(), self._jwt_max_ttl)
        if principal is None:
            raise not_authorized()
        return principal


def start_warnings(settings: Settings, access: AccessConfig) -> list[str]:
    """What an operator should hear about at start: settings that leave the API open."""
    warnings = []
    if settings.no_auth:
        warnings.append(
            "authentication is OFF: anyone who can reach this port can run JavaScript here; "
            "writes from other web origins are refused, but use it only on a trusted host"
        )
    else:
        root = access.users.get("root")
        if root is not None and root.password == "":
            warnings.append(
                "the superuser 'root' has an empty password: set ARANGOTASKS_ROOT_PASSWORD "
                "(or a root entry in the users file)"
            )
    return warnings

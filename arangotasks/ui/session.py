"""Dashboard sessions: a signed, HttpOnly, SameSite=Strict cookie and a CSRF token per session.

The cookie is a JWT (HS256, the server's JWT secret, audience ``arangotasks-ui``) naming the user
and a random session nonce; the user is looked up again on every request, so a user removed from
the users file loses the dashboard at once. Every form carries ``csrf`` = HMAC(secret, nonce), and
every POST must also come from this server's own origin.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt
from aiohttp import web

from arangotasks.auth import ANONYMOUS_SUPERUSER, Principal
from arangotasks.config import AccessConfig

COOKIE = "arangotasks_session"
AUDIENCE = "arangotasks-ui"
SESSION_TTL = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in dashboard user."""

    principal: Principal
    nonce: str

    def csrf(self, access: AccessConfig) -> str:
        """The CSRF token of this session (the same for every form)."""
        key = access.jwt_secret.encode()
        return hmac.new(key, b"csrf:" + self.nonce.encode(), hashlib.sha256).hexdigest()


def issue(response: web.StreamResponse, access: AccessConfig, username: str, secure: bool) -> None:
    """Set a fresh session cookie for ``username`` on ``response``."""
    now = int(time.time())
    claims = {
        "aud": AUDIENCE,
        "sub": username,
        "nonce": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + SESSION_TTL,
    }
    token = jwt.encode(claims, access.jwt_secret, algorithm="HS256")
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_TTL,
        path="/ui/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def clear(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/ui/")


def current(request: web.Request, access: AccessConfig, no_auth: bool) -> Session | None:
    """The session of ``request``, or None (no cookie, a bad or expired one, an unknown user)."""
    if no_auth:
        return Session(ANONYMOUS_SUPERUSER, "no-auth")
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        claims = jwt.decode(
            token,
            access.jwt_secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "nonce", "aud"]},
        )
    except jwt.PyJWTError:
        return None
    user = access.users.get(str(claims["sub"]))
    if user is None:
        return None
    principal = Principal(
        user.name,
        superuser=user.superuser,
        writable=user.superuser or user.access.value == "rw",
        databases=None if user.superuser else user.databases,
    )
    return Session(principal, str(claims["nonce"]))


def same_origin(request: web.Request) -> bool:
    """Whether a POST comes from a page of this server (Origin, else Referer, must match Host)."""
    host = request.headers.get("Host", "")
    for header in ("Origin", "Referer"):
        value = request.headers.get(header)
        if value:
            rest = value.split("://", 1)[-1]
            return rest.split("/", 1)[0] == host
    return False


def csrf_ok(session: Session, access: AccessConfig, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(session.csrf(access), given)

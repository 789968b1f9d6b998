"""ArangoDB error numbers, their HTTP statuses and default messages (§1.1)."""

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    INTERNAL = 4
    NOT_IMPLEMENTED = 9
    BAD_PARAMETER = 10
    FORBIDDEN = 11
    RESOURCE_LIMIT = 32  # our use: a user's quota (tasks, command or params bytes), 403
    HTTP_UNAUTHORIZED = 401
    HTTP_NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    REQUEST_TOO_LARGE = 413
    TOO_MANY_REQUESTS = 429
    SERVICE_UNAVAILABLE = 503
    CORRUPTED_JSON = 600
    SUPERFLUOUS_SUFFICES = 601
    DUPLICATE_NAME = 1207
    DATABASE_NOT_FOUND = 1228
    DATABASE_NAME_INVALID = 1229
    USE_SYSTEM_DATABASE = 1230
    USER_NOT_FOUND = 1703
    TASK_INVALID_ID = 1850
    TASK_DUPLICATE_ID = 1851
    TASK_NOT_FOUND = 1852
    SECRET_NOT_FOUND = 1860  # arangotasks' own (ArangoDB has no secrets)
    SECRET_KEY_UNAVAILABLE = 1861
    QUEUE_FULL = 21003  # our use: too many queued manual runs, 429

    @property
    def status(self) -> int:
        return _STATUS[self]

    @property
    def default_message(self) -> str:
        return _MESSAGE[self]


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INTERNAL: 500,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.BAD_PARAMETER: 400,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RESOURCE_LIMIT: 403,
    ErrorCode.HTTP_UNAUTHORIZED: 401,
    ErrorCode.HTTP_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.REQUEST_TOO_LARGE: 413,
    ErrorCode.TOO_MANY_REQUESTS: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.CORRUPTED_JSON: 400,
    ErrorCode.SUPERFLUOUS_SUFFICES: 400,
    ErrorCode.DUPLICATE_NAME: 409,
    ErrorCode.DATABASE_NOT_FOUND: 404,
    ErrorCode.DATABASE_NAME_INVALID: 400,
    ErrorCode.USE_SYSTEM_DATABASE: 403,
    ErrorCode.USER_NOT_FOUND: 404,
    ErrorCode.TASK_INVALID_ID: 400,
    ErrorCode.TASK_DUPLICATE_ID: 409,
    ErrorCode.TASK_NOT_FOUND: 404,
    ErrorCode.SECRET_NOT_FOUND: 404,
    ErrorCode.SECRET_KEY_UNAVAILABLE: 500,
    ErrorCode.QUEUE_FULL: 429,
}

_MESSAGE: dict[ErrorCode, str] = {
    ErrorCode.INTERNAL: "internal error",
    ErrorCode.NOT_IMPLEMENTED: "not implemented",
    ErrorCode.BAD_PARAMETER: "bad parameter",
    ErrorCode.FORBIDDEN: "forbidden",
    ErrorCode.RESOURCE_LIMIT: "resource limit exceeded",
    ErrorCode.HTTP_UNAUTHORIZED: "unauthorized",
    ErrorCode.HTTP_NOT_FOUND: "not found",
    ErrorCode.METHOD_NOT_ALLOWED: "method not supported",
    ErrorCode.REQUEST_TOO_LARGE: "request entity too large",
    ErrorCode.TOO_MANY_REQUESTS: "too many requests",
    ErrorCode.SERVICE_UNAVAILABLE: "service unavailable",
    ErrorCode.CORRUPTED_JSON: "invalid JSON object",
    ErrorCode.SUPERFLUOUS_SUFFICES: "superfluous URL suffices",
    ErrorCode.DUPLICATE_NAME: "duplicate name",
    ErrorCode.DATABASE_NOT_FOUND: "database not found",
    ErrorCode.DATABASE_NAME_INVALID: "database name invalid",
    ErrorCode.USE_SYSTEM_DATABASE: "operation only allowed in system database",
    ErrorCode.USER_NOT_FOUND: "user not found",
    ErrorCode.TASK_INVALID_ID: "invalid task id",
    ErrorCode.TASK_DUPLICATE_ID: "duplicate task id",
    ErrorCode.TASK_NOT_FOUND: "task not found",
    ErrorCode.SECRET_NOT_FOUND: "secret not found",
    ErrorCode.SECRET_KEY_UNAVAILABLE: "secrets key unavailable",
    ErrorCode.QUEUE_FULL: "queue full",
}


class ArangoError(Exception):
    """An error rendered as ArangoDB's ``{"error":true,"errorNum":..}`` body.

    :param code: the ArangoDB error number.
    :param message: replaces the default message of ``code``.
    :param status: replaces the HTTP status implied by ``code``.
    """

    def __init__(self, code: ErrorCode, message: str | None = None, *, status: int | None = None):
        self.code = code
        self.message = message if message is not None else code.default_message
        self.status = status if status is not None else code.status
        self.headers: dict[str, str] = {}  # extra response headers (e.g. Retry-After)
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {
            "error": True,
            "errorNum": int(self.code),
            "errorMessage": self.message,
            "code": self.status,
        }


class StoreError(Exception):
    """Base of the store's errors."""


class DuplicateTaskError(StoreError):
    def __init__(self, task_id: str):
        super().__init__(f"a task with id {task_id!r} exists")
        self.task_id = task_id


class StoreUnavailableError(StoreError):
    """The store cannot be written or read now (read-only file, disk full, connection lost).

    The message is for the log and may name the file, host or port; ``reason`` is a short
    category without them (e.g. ``"disk full"``), the only part a client is shown.
    """

    def __init__(self, message: str, reason: str = "unavailable"):
        super().__init__(message)
        self.reason = reason


class StoreLockedError(StoreError):
    """Another server holds the store (one server per store until several nodes are safe)."""

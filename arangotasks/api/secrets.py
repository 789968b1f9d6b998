"""``/_api/secrets``: the secrets of the request's database (an arangotasks extension).

No response ever carries a value: not the answers, not the error messages (which name the
field, never quote the body). Listing needs access to the database; writing needs read-write.
"""

import json
from typing import Any

from aiohttp import web

from arangotasks.api.common import iso, json_response
from arangotasks.auth import Principal
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.keys import REGISTRY, database_of, principal_of
from arangotasks.store.secret_rows import SecretRecord
from arangotasks.vault import (
    NAME_RULE,
    SecretError,
    SecretKeyError,
    SecretLimitError,
    SecretNotFoundError,
    Vault,
    valid_name,
)


def secret_to_api(record: SecretRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "database": record.database,
        "created": iso(record.created),
        "updated": iso(record.updated),
    }


def _vault(request: web.Request) -> Vault:
    return request.app[REGISTRY].vault


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not valid_name(name):
        raise ArangoError(ErrorCode.BAD_PARAMETER, f"invalid secret name: expected {NAME_RULE}")
    return name


def _require_write(request: web.Request, what: str) -> Principal:
    principal = principal_of(request)
    if not principal.writable:
        raise ArangoError(
            ErrorCode.FORBIDDEN,
            f"{what} needs db RW permissions: user '{principal.name}' has read-only access to "
            f"database '{database_of(request)}'",
        )
    return principal


def _arango_error(exc: SecretError) -> ArangoError:
    if isinstance(exc, SecretNotFoundError):
        return ArangoError(ErrorCode.SECRET_NOT_FOUND, str(exc))
    if isinstance(exc, SecretKeyError):
        return ArangoError(ErrorCode.SECRET_KEY_UNAVAILABLE, str(exc))
    if isinstance(exc, SecretLimitError):
        return ArangoError(ErrorCode.BAD_PARAMETER, str(exc))
    return ArangoError(ErrorCode.INTERNAL, str(exc))


def _value(raw: bytes, max_bytes: int) -> str:
    """The ``value`` of a ``{"value": "..."}`` body. The messages never quote the body: the
    decoders' own messages could show a piece of the value."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ArangoError(
            ErrorCode.CORRUPTED_JSON, 'expecting a JSON object body {"value": "..."}'
        ) from None
    if not isinstance(body, dict):
        raise ArangoError(ErrorCode.CORRUPTED_JSON, 'expecting a JSON object body {"value": "..."}')
    value = body.get("value")
    if not isinstance(value, str) or not value:
        raise ArangoError(ErrorCode.BAD_PARAMETER, "'value' must be a non-empty string")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ArangoError(
            ErrorCode.BAD_PARAMETER, "'value' must be valid Unicode (no lone surrogates)"
        ) from None
    if size > max_bytes:
        raise ArangoError(
            ErrorCode.BAD_PARAMETER,
            f"'value' is longer than {max_bytes} bytes (ARANGOTASKS_SECRETS_MAX_VALUE_KB)",
        )
    return value


async def list_secrets(request: web.Request) -> web.StreamResponse:
    """``GET /_api/secrets``: names and times of the database's secrets, by name."""
    records = await _vault(request).list(database_of(request))
    return json_response(
        {"error": False, "code": 200, "result": [secret_to_api(r) for r in records]}
    )


async def get_secret(request: web.Request) -> web.StreamResponse:
    """``GET /_api/secrets/{name}``: one secret's name and times; 500/1861 when it cannot be
    decrypted with the current key (it is checked, never shown)."""
    name = _name(request)
    vault = _vault(request)
    try:
        record = await vault.get(database_of(request), name)
        vault.decrypt(record)
    except SecretError as exc:
        raise _arango_error(exc) from None
    return json_response(secret_to_api(record))


async def put_secret(request: web.Request) -> web.StreamResponse:
    """``PUT /_api/secrets/{name}`` with ``{"value": "..."}``: create or replace."""
    vault = _vault(request)
    raw = await request.read()
    name = _name(request)
    _require_write(request, "storing a secret")
    value = _value(raw, vault.max_value_bytes)
    try:
        record = await vault.put(database_of(request), name, value)
    except SecretError as exc:
        raise _arango_error(exc) from None
    return json_response(secret_to_api(record))


async def delete_secret(request: web.Request) -> web.StreamResponse:
    """``DELETE /_api/secrets/{name}``: works without the key, so that the secrets of a lost
    key can be removed."""
    name = _name(request)
    _require_write(request, "deleting a secret")
    try:
        await _vault(request).delete(database_of(request), name)
    except SecretError as exc:
        raise _arango_error(exc) from None
    return json_response({"error": False, "code": 200})

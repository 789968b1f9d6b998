"""Secrets of each database, encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256).

The key is ``ARANGOTASKS_SECRETS_KEY`` or, without it, the file ``DATA_DIR/secrets.key`` (mode
0600), created atomically on the first write. Every stored secret carries the id of the key that
encrypted it (a fingerprint), so that a lost or replaced key is reported as such: a secret is
never decrypted into garbage, and no new key is made while secrets of a missing one remain.
"""

import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

from arangotasks.config import Settings
from arangotasks.store.base import TaskStore
from arangotasks.store.secret_rows import SecretRecord

log = logging.getLogger(__name__)

KEY_FILE = "secrets.key"
KEY_SETTING = "ARANGOTASKS_SECRETS_KEY"
# Letters, digits, "_", "." and "-"; not starting with "." or "-"; at most 128 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
NAME_RULE = "1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"


class SecretError(Exception):
    """Base of the vault's errors; the message is meant for the user."""


class SecretKeyError(SecretError):
    """The key is missing, malformed, or not the one a secret was stored with."""


class SecretNotFoundError(SecretError):
    def __init__(self, database: str, name: str):
        super().__init__(f"secret '{name}' not found in database '{database}'")
        self.database = database
        self.name = name


class SecretLimitError(SecretError):
    """The database holds the maximum number of secrets."""


def valid_name(name: str) -> bool:
    return NAME_PATTERN.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class Key:
    fernet: Fernet
    key_id: str
    source: str  # where it came from, for messages


def key_id_of(raw: bytes) -> str:
    """A fingerprint of a key: names it in messages and rows without revealing it."""
    return hashlib.sha256(b"arangotasks secrets key id\0" + raw).hexdigest()[:16]


def _load(raw: bytes, source: str) -> Key:
    try:
        fernet = Fernet(raw)
    except ValueError:
        raise SecretKeyError(
            f"{source} is not a Fernet key (44 characters of URL-safe base64, e.g. from "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from None
    return Key(fernet, key_id_of(raw), source)


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` unless it exists; atomic: no reader sees a partial file,
    and of two processes racing, both end up with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secrets.key.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(Fernet.generate_key() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)  # fails if the name exists: never replaces a key
        except FileExistsError:
            return
    finally:
        os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    log.warning("created the secrets key %s: back it up, secrets cannot be read without it", path)


class KeyRing:
    """The current key: from the setting, or read (and on the first write, created) from the
    key file. Read once, then kept in memory."""

    def __init__(self, setting: SecretStr | None, path: Path):
        self.path = path
        # Messages reach API clients and task code: they name the file, not the server's path.
        self.label = f"the key file {KEY_FILE} in the data directory"
        self._key: Key | None = None
        if setting is not None:
            # Checked at start: a malformed setting stops the server with a clear message.
            try:
                self._key = _load(setting.get_secret_value().strip().encode(), KEY_SETTING)
            except SecretKeyError as exc:
                raise ValueError(str(exc)) from None

    def current(self, *, create: bool) -> Key | None:
        """The key; ``None`` when there is none and ``create`` is false."""
        if self._key is not None:
            return self._key
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if not create:
                return None
            try:
                _create_key_file(self.path)
                raw = self.path.read_bytes()
            except OSError as exc:
                log.error("cannot create the secrets key %s: %s", self.path, exc)
                raise SecretKeyError(f"cannot create {self.label}: {exc.strerror}") from None
        except OSError as exc:
            log.error("cannot read the secrets key %s: %s", self.path, exc)
            raise SecretKeyError(f"cannot read {self.label}: {exc.strerror}") from None
        if self.path.stat().st_mode & 0o077:
            log.warning("the secrets key %s is readable by others: chmod 600 it", self.path)
        self._key = _load(raw.strip(), self.label)
        return self._key


class Vault:
    """Stores, lists and decrypts secrets; the plain value exists only in :meth:`put`'s
    argument and :meth:`reveal`'s result."""

    def __init__(self, store: TaskStore, settings: Settings):
        self._store = store
        self.keys = KeyRing(settings.secrets_key, settings.data_dir / KEY_FILE)
        self.max_value_bytes = settings.secrets_max_value_kb * 1024
        self.max_count = settings.secrets_max_count

    async def put(self, database: str, name: str, value: str) -> SecretRecord:
        key = self.keys.current(create=False)
        if key is None:
            stored = await self._store.secret_key_ids()
            if stored:
                raise SecretKeyError(
                    f"no secrets key: {self.keys.label} is missing, but the store holds "
                    f"{sum(stored.values())} secret(s) encrypted with key "
                    f"{', '.join(stored)}: restore the key file from its backup (or set "
                    f"{KEY_SETTING} to that key), or delete those secrets before storing new ones"
                )
            key = self.keys.current(create=True)
            assert key is not None
        token = key.fernet.encrypt(value.encode("utf-8")).decode("ascii")
        now = time.time()
        record = SecretRecord(database, name, token, key.key_id, now, now)
        stored_record = await self._store.put_secret(record, self.max_count)
        if stored_record is None:
            raise SecretLimitError(
                f"database '{database}' holds the maximum of {self.max_count} secrets "
                "(ARANGOTASKS_SECRETS_MAX_COUNT)"
            )
        return stored_record

    async def get(self, database: str, name: str) -> SecretRecord:
        record = await self._store.get_secret(database, name)
        if record is None:
            raise SecretNotFoundError(database, name)
        return record

    async def list(self, database: str) -> list[SecretRecord]:
        return await self._store.list_secrets(database)

    async def delete(self, database: str, name: str) -> None:
        if not await self._store.delete_secret(database, name):
            raise SecretNotFoundError(database, name)

    async def exists(self, database: str, name: str) -> bool:
        return valid_name(name) and await self._store.get_secret(database, name) is not None

    async def reveal(self, database: str, name: str) -> str:
        """The plain value; :class:`SecretNotFoundError` or :class:`SecretKeyError`."""
        if not valid_name(name):
            raise SecretNotFoundError(database, name)
        return self.decrypt(await self.get(database, name))

    def decrypt(self, record: SecretRecord) -> str:
        what = f"secret '{record.name}' of database '{record.database}' cannot be decrypted"
        key = self.keys.current(create=False)
        if key is None:
            raise SecretKeyError(
                f"{what}: no secrets key ({self.keys.label} is missing: restore it from its "
                f"backup, or set {KEY_SETTING})"
            )
        if record.key_id != key.key_id:
            raise SecretKeyError(
                f"{what}: it was stored with key {record.key_id}, but {key.source} is key "
                f"{key.key_id} (the key was lost or replaced: restore it, or store the secret "
                "again)"
            )
        try:
            return key.fernet.decrypt(record.token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretKeyError(
                f"{what}: its stored token is damaged (store the secret again)"
            ) from None

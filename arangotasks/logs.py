"""Log set-up of ``arangotasks serve``: text lines (default) or one JSON object per line."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from arangotasks.config import LogFormat, Settings

ACCESS_LOGGER = "arangotasks.access"
# aiohttp's access log format, with the time taken (seconds) at the end.
ACCESS_FORMAT = '%a "%r" %s %b "%{User-Agent}i" %Tf'
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has: whatever else a record carries came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"time","level","logger","message", ...extra fields, "exception"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: Settings) -> None:
    """Set the root logger's level and format from the settings (``serve`` only)."""
    handler = logging.StreamHandler()
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def access_log_options(settings: Settings) -> dict[str, Any]:
    """``AppRunner`` keyword arguments: no access log unless ``ARANGOTASKS_ACCESS_LOG`` is on."""
    if not settings.access_log:
        return {"access_log": None}
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.setLevel(logging.INFO)  # shown even when the log level is WARNING
    return {"access_log": logger, "access_log_format": ACCESS_FORMAT}

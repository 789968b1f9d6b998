"""JSON log lines: one object per line with the record's extra fields."""

import json
import logging

from arangotasks.logs import JsonFormatter


def test_json_line_has_message_level_and_extra_fields():
    record = logging.makeLogRecord(
        {
            "name": "arangotasks.api.tasks",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "task %s created",
            "args": ("42",),
            "task_id": "42",
            "user": "alice",
        }
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "task 42 created"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "arangotasks.api.tasks"
    assert entry["task_id"] == "42" and entry["user"] == "alice"
    assert entry["time"].endswith("Z")
    assert "args" not in entry and "msg" not in entry


def test_exception_is_one_field():
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]

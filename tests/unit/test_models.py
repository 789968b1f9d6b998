"""The task object's key order and number formatting (§1.2)."""

import json

from arangotasks.api.common import dumps
from arangotasks.models import Task, format_seconds, to_ms, wrap_command


def make(**kwargs) -> Task:
    base = {"id": "1", "name": "n", "created": 1550658791.3249488, "command": "return 1;"}
    return Task(**{"database": "_system", **base, **kwargs})


def test_key_order_periodic():
    body = make(period_ms=2000, offset_ms=0).to_api()
    assert list(body) == [
        "id",
        "name",
        "created",
        "type",
        "period",
        "offset",
        "command",
        "database",
    ]
    assert body["type"] == "periodic"


def test_timed_task_has_no_period_key():
    body = make(period_ms=None, offset_ms=1000).to_api()
    assert list(body) == ["id", "name", "created", "type", "offset", "command", "database"]
    assert body["type"] == "timed"


def test_numbers_are_formatted_like_arangodb():
    text = dumps(make(period_ms=2000, offset_ms=1500).to_api())
    assert '"period":2,' in text
    assert '"offset":1.5,' in text
    assert '"created":1550658791.3249488,' in text


def test_created_is_always_a_float():
    body = json.loads(dumps(make(created=1700000000.0).to_api()))
    assert isinstance(body["created"], float)


def test_zero_ms_period_and_negative_offset():
    text = dumps(make(period_ms=0, offset_ms=-5500).to_api())
    assert '"period":0,' in text and '"offset":-5.5,' in text


def test_command_is_wrapped_exactly():
    cmd = "(function(params) { require('@arangodb').print(params); })(params)"
    assert make(command=cmd).to_api()["command"] == (
        "(function (params) { (function(params) { require('@arangodb').print(params); })(params) }"
        " )(params);"
    )
    assert wrap_command("") == "(function (params) {  } )(params);"


def test_format_and_truncate_helpers():
    assert format_seconds(1) == 0.001
    assert format_seconds(10000) == 10
    assert to_ms(0.0019) == 1
    assert to_ms(-0.0019) == -1


def test_compact_utf8_json():
    assert dumps({"a": "ü/x"}) == '{"a":"ü/x"}'


def test_params_decode():
    assert make(params_json='"s"').params() == "s"
    assert make(params_json=None).params() is None

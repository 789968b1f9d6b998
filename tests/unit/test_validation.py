"""One case per rule of §1.4 (steps 1, 5-11, 13), in ArangoDB's order."""

import json
import logging

import pytest

from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.validation import DEFAULT_NAME, parse_json_body, parse_task_body


def parse(body, *, url_id=None, caller=""):
    return parse_task_body(body, url_id=url_id, caller=caller, max_timeout=3600)


def error_of(body, **kwargs) -> ArangoError:
    with pytest.raises(ArangoError) as info:
        parse(body, **kwargs)
    return info.value


@pytest.mark.parametrize(
    "raw",
    [b"{", b"{'a':1}", b'{"a":NaN}', b'{"a":Infinity}', b"\xff\xfe", b"[1,]"],
    ids=["truncated", "single-quotes", "nan", "infinity", "bad-utf8", "trailing-comma"],
)
def test_step1_invalid_json_is_600(raw):
    with pytest.raises(ArangoError) as info:
        parse_json_body(raw)
    assert (info.value.code, info.value.status) == (ErrorCode.CORRUPTED_JSON, 400)


@pytest.mark.parametrize("raw", [b"", b"   ", b"[]", b"42", b'"x"', b"null"])
def test_step1_body_must_be_an_object(raw):
    with pytest.raises(ArangoError) as info:
        parse_json_body(raw)
    assert info.value.code == ErrorCode.CORRUPTED_JSON
    assert "JSON object" in info.value.message


def test_step1_deep_nesting_is_a_clean_error():
    with pytest.raises(ArangoError) as info:
        parse_json_body(b"[" * 100_000 + b"]" * 100_000)
    assert info.value.code == ErrorCode.CORRUPTED_JSON


def test_step5_put_url_id_overrides_body_id():
    assert parse({"id": "SampleTask", "command": ""}, url_id="sampleTask").id == "sampleTask"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("mine", "mine"), ("", ""), (123, None), (None, None), (["a"], None)],
    ids=["string", "empty-string", "number", "null", "list"],
)
def test_step5_post_takes_body_id_only_if_string(value, expected):
    assert parse({"id": value, "command": ""}).id == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("n", "n"), (5, DEFAULT_NAME), (None, DEFAULT_NAME)]
)
def test_step6_name_defaults(value, expected):
    assert parse({"name": value, "command": ""}).name == expected


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("true", False), (1, False)])
def test_step7_is_system_only_if_boolean(value, expected):
    assert parse({"isSystem": value, "command": ""}).is_system is expected


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [(1, 1000), (0.0015, 1), (2.9999, 2999), (-5.5, -5500), ("5", 0), (None, 0), (True, 0)],
    ids=["int", "sub-ms-truncates", "truncates-not-rounds", "negative", "string", "null", "bool"],
)
def test_step8_offset_lenient_and_truncated_to_ms(value, expected_ms):
    assert parse({"offset": value, "command": ""}).offset_ms == expected_ms


@pytest.mark.parametrize(
    "value", [0, -1, 0.0, -0.5], ids=["zero", "minus-one", "zero-float", "neg"]
)
def test_step9_numeric_period_must_be_positive(value):
    err = error_of({"period": value, "command": ""})
    assert (err.code, err.status, err.message) == (
        ErrorCode.BAD_PARAMETER,
        400,
        "task period must be specified and positive",
    )


@pytest.mark.parametrize("value", ["5", None, True, [1]], ids=["string", "null", "bool", "list"])
def test_step9_non_numeric_period_makes_a_timed_task(value):
    assert parse({"period": value, "command": ""}).period_ms is None


def test_step9_tiny_period_is_periodic_with_zero_ms():
    assert parse({"period": 0.0001, "command": ""}).period_ms == 0


def test_step9_runs_before_command_check():
    # Order matters: a bad period and a missing command report the period.
    assert error_of({"period": 0}).message == "task period must be specified and positive"


def test_step10_run_as_other_user_is_forbidden():
    err = error_of({"runAsUser": "bob", "command": ""}, caller="alice")
    assert (err.code, err.status, err.message) == (
        ErrorCode.FORBIDDEN,
        403,
        "cannot run task as a different user",
    )


def test_step10_run_as_self_or_empty_is_fine():
    assert parse({"runAsUser": "alice", "command": ""}, caller="alice").command == ""
    assert parse({"runAsUser": "", "command": ""}, caller="alice").command == ""


def test_step10_any_name_fails_with_auth_off():
    assert error_of({"runAsUser": "root", "command": ""}, caller="").code == ErrorCode.FORBIDDEN


@pytest.mark.parametrize(
    "value", [None, 5, {"a": 1}, ["x"]], ids=["null", "number", "object", "list"]
)
def test_step11_command_must_be_a_string(value):
    err = error_of({"command": value})
    assert (err.code, err.message) == (ErrorCode.BAD_PARAMETER, "command must be specified")


def test_step11_missing_command():
    assert error_of({"name": "x"}).message == "command must be specified"


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"a": 1}, '{"a":1}'), ("abc", '"abc"'), (42, "42"), (None, "null"), ([1, True], "[1,true]")],
    ids=["object", "string", "number", "null", "array"],
)
def test_step13_params_keep_their_type(params, expected):
    assert parse({"command": "", "params": params}).params_json == expected


def test_step13_absent_params_stay_absent():
    assert parse({"command": ""}).params_json is None


def test_timeout_extension():
    assert parse({"command": "", "timeout": 2.5}).timeout == 2.5
    for bad in (0, -1, "5", 10_000):
        assert "timeout" in error_of({"command": "", "timeout": bad}).message


def test_huge_offset_is_refused_not_overflowed():
    assert "out of range" in error_of({"command": "", "offset": 1e300}).message


def test_params_round_trip_unicode():
    spec = parse({"command": "", "params": {"s": "ü\u0000𝄞"}})
    assert json.loads(spec.params_json) == {"s": "ü\u0000𝄞"}


@pytest.mark.parametrize("field", ["id", "name", "command"])
def test_lone_surrogates_and_nul_are_refused(field):
    body = {"command": "x", field: "PLACEHOLDER"}
    raw = json.dumps(body).replace("PLACEHOLDER", "a\\ud800b").encode()
    surrogate = parse_json_body(raw)
    assert error_of(surrogate).code == ErrorCode.CORRUPTED_JSON
    nul = {"command": "x", field: "a\u0000b"}
    assert error_of(nul).code == ErrorCode.BAD_PARAMETER


def test_unknown_fields_are_ignored_with_one_warning_naming_them(caplog):
    with caplog.at_level(logging.WARNING, logger="arangotasks.validation"):
        spec = parse({"command": "1", "peroid": 5, "colour": "red", "period": 2})
    assert spec.period_ms == 2000
    lines = [r.getMessage() for r in caplog.records if r.name == "arangotasks.validation"]
    assert lines == ["task body: ignoring unknown field(s) 'peroid', 'colour'"]


def test_known_fields_log_nothing_and_many_unknown_ones_stay_one_short_line(caplog):
    known = {"id": "a", "name": "n", "isSystem": True, "offset": 1, "period": 1}
    known |= {"runAsUser": "", "command": "1", "params": 1, "timeout": 1}
    with caplog.at_level(logging.WARNING, logger="arangotasks.validation"):
        parse(known)
        parse({"command": "1", **{"x" * 1000 + str(i): i for i in range(500)}})
    lines = [r.getMessage() for r in caplog.records if r.name == "arangotasks.validation"]
    assert len(lines) == 1
    assert lines[0].endswith(" and 490 more") and len(lines[0]) < 1000

"""The schedule extension fields: validation, the next-fire rules and PATCH merging."""

from datetime import UTC, datetime

import pytest

from arangotasks import schedule
from arangotasks.errors import ArangoError
from arangotasks.models import NO_OPTIONS, Options, Overlap, Retries, Task
from arangotasks.patch import merge, patched_spec
from arangotasks.validation import parse_task_body

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def spec(**body):
    body.setdefault("command", "return 1;")
    return parse_task_body(body, url_id=None, caller="", max_timeout=3600, now=NOW)


def task(**fields) -> Task:
    values = {"id": "t", "name": "n", "created": NOW, "command": "return 1;", "database": "_system"}
    values.update(fields)
    return Task(**values)


def test_a_body_without_extension_fields_has_no_options() -> None:
    assert spec(period=5, offset=1, params={"a": 1}, timeout=3).options is NO_OPTIONS
    assert spec(cron=None, enabled=None).options is NO_OPTIONS


def test_every_field_parses() -> None:
    options = spec(
        cron="0 3 * * *",
        timezone="Europe/Berlin",
        jitter=2.5,
        startAt="2026-06-02T00:00:00Z",
        endAt="2026-07-01T00:00:00+02:00",
        retries={"count": 3, "delay": 1, "backoff": 2, "maxDelay": 3},
        overlap="buffer",
        misfire="skip",
        enabled=False,
    ).options
    assert options.cron == "0 3 * * *"
    assert options.timezone == "Europe/Berlin"
    assert options.jitter == 2.5
    assert options.start_at == datetime(2026, 6, 2, tzinfo=UTC).timestamp()
    assert options.end_at == datetime(2026, 6, 30, 22, tzinfo=UTC).timestamp()
    assert options.retries == Retries(3, 1.0, 2.0, 3.0)
    assert options.overlap is Overlap.BUFFER
    assert options.misfire == "skip"
    assert options.enabled is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"cron": "* * * * *", "period": 5}, "cron: a task has either cron or period"),
        ({"cron": "99 * * * *"}, "cron: bad minute"),
        ({"cron": 5}, "cron: expected a string"),
        ({"cron": "@often"}, "cron: unknown shortcut"),
        ({"cron": "* * * * *", "timezone": "Nowhere/Land"}, "timezone: unknown time zone"),
        ({"cron": "* * * * *", "timezone": 3}, "timezone: unknown time zone"),
        ({"timezone": "UTC"}, "timezone: only a cron task"),
        ({"jitter": -1}, "jitter: expected a number of seconds from 0"),
        ({"jitter": "1"}, "jitter: expected a number"),
        ({"startAt": "tomorrow"}, "startAt: expected an RFC 3339 date"),
        ({"startAt": "2026-06-02T00:00:00"}, "startAt: the date needs a time zone"),
        ({"endAt": "2020-01-01T00:00:00Z"}, "endAt: is in the past"),
        (
            {"startAt": "2026-08-01T00:00:00Z", "endAt": "2026-07-01T00:00:00Z"},
            "endAt: must be after startAt",
        ),
        ({"retries": 3}, "retries: expected an object"),
        ({"retries": {"count": -1}}, "retries: count must be an integer"),
        ({"retries": {"count": 1.5}}, "retries: count must be an integer"),
        ({"retries": {"count": 1, "backoff": 0.5}}, "retries: backoff must be"),
        ({"retries": {"count": 1, "delay": -2}}, "delay: expected a number of seconds"),
        ({"retries": {"count": 1, "tries": 2}}, "retries: unknown key 'tries'"),
        ({"overlap": "queue"}, "overlap: expected one of 'skip', 'buffer'"),
        ({"misfire": "always"}, "misfire: expected one of 'run_once', 'skip'"),
        ({"enabled": "yes"}, "enabled: expected true or false"),
    ],
)
def test_bad_values_are_400_10_naming_the_field(body: dict, message: str) -> None:
    with pytest.raises(ArangoError) as caught:
        spec(**body)
    assert (caught.value.status, caught.value.code) == (400, 10)
    assert caught.value.message.startswith(message), caught.value.message


def test_first_fire_honours_offset_start_and_end() -> None:
    start = NOW + 3600
    t = task(offset_ms=10_000, options=Options(start_at=start))
    assert schedule.created_fire(t) == start
    t = task(offset_ms=10_000)
    assert schedule.created_fire(t) == NOW + 10
    t = task(options=Options(cron="0 * * * *", start_at=NOW + 1800))
    assert schedule.created_fire(t) == NOW + 3600
    t = task(options=Options(cron="0 * * * *", start_at=NOW + 3600))
    assert schedule.created_fire(t) == NOW + 3600  # a slot exactly at startAt is due
    t = task(period_ms=1000, options=Options(end_at=NOW + 0.5))
    assert schedule.after_run(t, NOW, 1.0) is None


def test_misfire_skip_resumes_on_the_cadence() -> None:
    t = task(period_ms=10_000)
    assert schedule.after_misfire(t, NOW, NOW + 25, 10.0) == NOW + 30
    t = task(options=Options(cron="*/5 * * * *"))
    assert schedule.after_misfire(t, NOW, NOW + 61, None) == NOW + 300
    assert schedule.after_misfire(task(), NOW, NOW + 1, None) is None


def test_upcoming_slots() -> None:
    t = task(options=Options(cron="0 0 * * *", end_at=NOW + 3 * 86400), next_run_at=NOW + 43200)
    assert schedule.upcoming(t, 10, None) == [NOW + 43200 + n * 86400 for n in range(3)]
    t = task(period_ms=2000, next_run_at=NOW)
    assert schedule.upcoming(t, 3, 2.0) == [NOW, NOW + 2, NOW + 4]
    paused = task(period_ms=2000, next_run_at=NOW, options=Options(enabled=False))
    assert schedule.upcoming(paused, 3, 2.0) == []


def test_retry_delays_back_off_up_to_the_cap() -> None:
    retries = Retries(count=4, delay=1.0, backoff=2.0, max_delay=5.0)
    assert [retries.delay_before(attempt) for attempt in (2, 3, 4, 5)] == [1, 2, 4, 5]


def test_patch_merges_and_switches_kind() -> None:
    periodic = task(period_ms=1001, params_json='{"a":1}')
    assert merge(periodic, {"name": "x"})["period"] == 1.001
    switched = merge(periodic, {"cron": "@hourly", "timezone": "Asia/Kolkata"})
    assert "period" not in switched and switched["cron"] == "@hourly"
    assert "params" not in merge(periodic, {"params": None})
    kept = patched_spec(periodic, {"name": "x"}, caller="", max_timeout=3600, now=NOW)
    assert kept.period_ms == 1001 and kept.name == "x" and kept.params_json == '{"a":1}'
    crontask = task(options=Options(cron="@daily", timezone="Europe/Berlin"))
    back = patched_spec(crontask, {"period": 5}, caller="", max_timeout=3600, now=NOW)
    assert back.period_ms == 5000 and back.options is NO_OPTIONS


def test_patch_refuses_fields_that_cannot_change() -> None:
    with pytest.raises(ArangoError, match="id: cannot be changed"):
        merge(task(), {"id": "other"})
    with pytest.raises(ArangoError, match="cron: a task has either cron or period"):
        patched_spec(
            task(period_ms=1000),
            {"cron": "* * * * *", "period": 2},
            caller="",
            max_timeout=9,
            now=NOW,
        )

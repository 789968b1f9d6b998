"""Cron slots across every DST transition of several years equal a brute-force oracle."""

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from arangotasks import cron
from tests.unit.dst_oracle import matcher, oracle, transitions

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",  # transitions at midnight: days without a midnight
    "Australia/Lord_Howe",  # 30-minute shifts
    "Asia/Kolkata",  # no DST at all (+05:30)
]
START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)
DAILY = ["30 2 * * *", "0 0 * * *", "45 1 * * *", "0 2 * * *", "59 23 * * *"]
HOURLY = ["0 * * * *", "30 * * * *", "*/15 * * * *", "* * * * *"]
SECONDS = ["* * * * * *", "*/10 * * * * *", "0 30 2 * * *", "30 * * * * *"]
MINUTE_WINDOW = 26 * 3600  # seconds either side of a transition
SECOND_WINDOW = 75 * 60


def _windows(tz: ZoneInfo, start: datetime, end: datetime, half: int) -> list[tuple[int, int]]:
    moments = transitions(tz, start, end)
    if not moments:  # a zone without DST: two ordinary days a year
        moments = [
            int(datetime(year, month, 1, 1, tzinfo=tz).timestamp())
            for year in range(start.year, end.year)
            for month in (1, 7)
        ]
    # Aligned to whole minutes, so that the oracle's minute steps land on wall-clock minutes.
    return [((t - half) // 60 * 60, (t + half) // 60 * 60) for t in moments]


def _computed(expression: str, zone: str, start: int, end: int) -> list[float]:
    slots = cron.parse(expression, zone).after(start)
    return list(itertools.takewhile(lambda at: at <= end, slots))


def _check(
    expressions: list[str], zone: str, half: int, step: int, start: datetime, end: datetime
) -> int:
    tz = ZoneInfo(zone)
    windows = _windows(tz, start, end, half)
    checked = 0
    for expression in expressions:
        match = matcher(expression)
        for lo, hi in windows:
            expected = list(oracle(match, tz, lo, hi, step))
            assert _computed(expression, zone, lo, hi) == expected, (
                expression,
                zone,
                datetime.fromtimestamp(lo, tz),
            )
            checked += 1
    return checked


@pytest.mark.parametrize("zone", ZONES)
def test_daily_and_hourly_slots_equal_the_oracle_at_every_transition(zone: str) -> None:
    windows = _check(DAILY + HOURLY, zone, MINUTE_WINDOW, 60, START, END)
    # 2024-2030: two transitions a year, or the two ordinary days of a zone without DST.
    assert windows == 14 * len(DAILY + HOURLY)


@pytest.mark.parametrize("zone", ZONES)
def test_seconds_slots_equal_the_oracle_around_every_transition(zone: str) -> None:
    # Three years here (a second-by-second walk is slow); all of 2000-2037 in the stress tier.
    _check(SECONDS, zone, SECOND_WINDOW, 1, START, START.replace(year=2027))


@pytest.mark.stress
@pytest.mark.parametrize("zone", ZONES)
def test_every_transition_of_2000_to_2037_equals_the_oracle(zone: str) -> None:
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2038, 1, 1, tzinfo=UTC)
    _check(DAILY + HOURLY, zone, MINUTE_WINDOW, 60, start, end)
    _check(SECONDS, zone, SECOND_WINDOW, 1, start, end)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expression", [*DAILY, "@daily"])
def test_a_daily_job_runs_exactly_once_per_local_day(zone: str, expression: str) -> None:
    tz = ZoneInfo(zone)
    slots = _computed(expression, zone, int(START.timestamp()), int(END.timestamp()))
    days = [datetime.fromtimestamp(at, tz).date() for at in slots]
    first = days[0]
    assert days == [first + timedelta(days=n) for n in range(len(days))]
    assert days[-1] >= date(2030, 12, 30)


def test_spring_forward_fires_once_at_the_end_of_the_gap() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    day = datetime(2026, 3, 28, 12, tzinfo=berlin).timestamp()
    # 02:00-02:59 does not exist on 2026-03-29: 02:30 fires at 03:00 CEST.
    got = _computed("0 30 2 * * *", "Europe/Berlin", int(day), int(day) + 2 * 86400)
    assert [datetime.fromtimestamp(at, berlin).isoformat() for at in got] == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    # Every minute of the gap fires once, together.
    every = _computed("* 2 * * *", "Europe/Berlin", int(day) + 12 * 3600, int(day) + 16 * 3600)
    assert [datetime.fromtimestamp(at, berlin).isoformat() for at in every] == [
        "2026-03-29T03:00:00+02:00"
    ]


def test_fall_back_fires_once_per_wall_clock_slot() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 25, 0, 30, tzinfo=berlin).timestamp()
    got = _computed("0 * * * *", "Europe/Berlin", int(start), int(start) + 5 * 3600)
    assert [datetime.fromtimestamp(at, berlin).isoformat() for at in got] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",  # the first 02:00; the second one does not fire
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]


def test_next_after_an_instant_in_the_second_pass_of_a_repeated_hour() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    second_pass = datetime(2026, 10, 25, 2, 10, fold=1, tzinfo=berlin).timestamp()
    nxt = cron.parse("*/5 * * * *", "Europe/Berlin").next_after(second_pass)
    assert nxt is not None
    assert datetime.fromtimestamp(nxt, berlin).isoformat() == "2026-10-25T03:00:00+01:00"


def test_a_day_without_midnight_runs_at_one() -> None:
    santiago = ZoneInfo("America/Santiago")
    start = datetime(2026, 9, 5, 12, tzinfo=santiago).timestamp()
    got = _computed("@daily", "America/Santiago", int(start), int(start) + 2 * 86400)
    assert [datetime.fromtimestamp(at, santiago).isoformat() for at in got] == [
        "2026-09-06T01:00:00-03:00",
        "2026-09-07T00:00:00-03:00",
    ]


@pytest.mark.parametrize(
    ("expression", "zone", "reason"),
    [
        ("61 * * * *", "UTC", "bad minute"),
        ("* * * *", "UTC", "expected 5 fields"),
        ("@reboot", "UTC", "unknown shortcut"),
        ("0 0 31 2 *", "UTC", "bad day-of-month"),
        ("* * * * *", "Mars/Olympus", "unknown time zone"),
        ("* * * * *", "", "unknown time zone"),
        ("* * * * * * *", "UTC", "expected 5 fields"),
    ],
)
def test_bad_expressions_and_zones_say_why(expression: str, zone: str, reason: str) -> None:
    with pytest.raises(cron.CronError, match=reason):
        cron.parse(expression, zone)


@pytest.mark.parametrize(
    ("shortcut", "expression"),
    [("@hourly", "0 * * * *"), ("@weekly", "0 0 * * 0"), ("@monthly", "0 0 1 * *")],
)
def test_shortcuts_equal_their_expressions(shortcut: str, expression: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    ours = list(itertools.islice(cron.parse(shortcut, "Europe/Berlin").after(start), 30))
    theirs = list(itertools.islice(cron.parse(expression, "Europe/Berlin").after(start), 30))
    assert ours == theirs

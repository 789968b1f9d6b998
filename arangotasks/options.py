"""The schedule extension fields of a task body (POST, PUT, PATCH): parsing and display.

ArangoDB clients never send these; a body without them gives ``NO_OPTIONS`` and a task that
looks exactly like ArangoDB's. Every bad value is 400/10 with ``"<field>: <reason>"``.
"""

import math
from datetime import UTC, datetime
from typing import Any

from arangotasks import cron
from arangotasks.config import Misfire
from arangotasks.errors import ArangoError, ErrorCode
from arangotasks.models import NO_OPTIONS, Options, Overlap, Retries

# The body fields this module reads (the other extension field is ``timeout``).
SCHEDULE_FIELDS = (
    "cron",
    "timezone",
    "jitter",
    "startAt",
    "endAt",
    "retries",
    "overlap",
    "misfire",
    "enabled",
)
RETRY_KEYS = ("count", "delay", "backoff", "maxDelay")
MAX_RETRIES = 100
MAX_SECONDS = 100 * 365 * 86400


def bad(name: str, why: str) -> ArangoError:
    return ArangoError(ErrorCode.BAD_PARAMETER, f"{name}: {why}")


def _number(body: dict[str, Any], name: str, *, low: float = 0.0) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(name, "expected a number of seconds")
    if not low <= value <= MAX_SECONDS:
        raise bad(name, f"expected a number of seconds from {low:g} to {MAX_SECONDS}")
    return float(value)


def parse_time(value: Any, name: str) -> float:
    """An RFC 3339 date with a zone (``Z`` or ``+hh:mm``) as epoch seconds."""
    if not isinstance(value, str):
        raise bad(name, "expected an RFC 3339 date such as 2026-11-23T10:00:00Z")
    try:
        moment = datetime.fromisoformat(value.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise bad(name, "expected an RFC 3339 date such as 2026-11-23T10:00:00Z") from None
    if moment.tzinfo is None:
        raise bad(name, "the date needs a time zone (Z or +hh:mm)")
    return moment.timestamp()


def _time(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    return None if value is None else parse_time(value, name)


def _retries(value: Any) -> Retries | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad("retries", 'expected an object such as {"count": 3, "delay": 10}')
    unknown = [key for key in value if key not in RETRY_KEYS]
    if unknown:
        raise bad("retries", f"unknown key '{unknown[0]}' (expected {', '.join(RETRY_KEYS)})")
    count = value.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_RETRIES:
        raise bad("retries", f"count must be an integer from 0 to {MAX_RETRIES}")
    delay = _number(value, "delay")
    backoff = value.get("backoff", 1)
    if isinstance(backoff, bool) or not isinstance(backoff, int | float) or not 1 <= backoff <= 100:
        raise bad("retries", "backoff must be a number from 1 to 100")
    max_delay = _number(value, "maxDelay")
    return Retries(count, delay or 0.0, float(backoff), max_delay)


def _choice(body: dict[str, Any], name: str, kinds: tuple[str, ...]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if value not in kinds:
        raise bad(name, f"expected one of {', '.join(repr(k) for k in kinds)}")
    return str(value)


def parse_options(body: dict[str, Any], *, has_period: bool, now: float) -> Options:
    """The extension fields of ``body``; ``NO_OPTIONS`` when it has none."""
    if not any(body.get(name) is not None for name in SCHEDULE_FIELDS):
        return NO_OPTIONS
    expression = body.get("cron")
    zone_name = body.get("timezone")
    if zone_name is not None:
        if expression is None:
            raise bad("timezone", "only a cron task has a time zone")
        try:
            cron.zone(zone_name)
        except cron.CronError as exc:
            raise bad("timezone", str(exc)) from None
    if expression is not None:
        if not isinstance(expression, str):
            raise bad("cron", "expected a string such as '*/5 * * * *' or '@daily'")
        if has_period:
            raise bad("cron", "a task has either cron or period, not both")
        try:
            cron.parse(expression, zone_name or "UTC")
        except cron.CronError as exc:
            raise bad("cron", str(exc)) from None
    start_at, end_at = _time(body, "startAt"), _time(body, "endAt")
    if end_at is not None:
        if start_at is not None and end_at <= start_at:
            raise bad("endAt", "must be after startAt")
        if end_at <= now:
            raise bad("endAt", "is in the past")
    enabled = body.get("enabled", True)
    if enabled is None:
        enabled = True
    if not isinstance(enabled, bool):
        raise bad("enabled", "expected true or false")
    overlap = _choice(body, "overlap", tuple(o.value for o in Overlap))
    misfire = _choice(body, "misfire", tuple(m.value for m in Misfire))
    return Options(
        cron=expression,
        timezone=zone_name if expression is not None else None,
        jitter=_number(body, "jitter") or None,
        start_at=start_at,
        end_at=end_at,
        retries=_retries(body.get("retries")),
        overlap=Overlap(overlap) if overlap is not None else None,
        misfire=misfire,
        enabled=enabled,
    )


def iso(ts: float | None) -> str | None:
    """RFC 3339 in UTC with microseconds (as the rest of the extension API writes times)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def options_to_body(options: Options, default_misfire: Misfire) -> dict[str, Any]:
    """Every schedule field as ``?details=true`` shows it (effective defaults filled in)."""
    retries = options.retries
    return {
        "cron": options.cron,
        "timezone": (options.timezone or "UTC") if options.cron is not None else None,
        "jitter": options.jitter or 0,
        "startAt": iso(options.start_at),
        "endAt": iso(options.end_at),
        "retries": None
        if retries is None
        else {
            "count": retries.count,
            "delay": retries.delay,
            "backoff": retries.backoff,
            "maxDelay": retries.max_delay,
        },
        "overlap": (options.overlap or Overlap.SKIP).value,
        "misfire": options.misfire or default_misfire.value,
        "enabled": options.enabled,
    }

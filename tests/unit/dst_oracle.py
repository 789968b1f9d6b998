"""A brute-force oracle for cron slots across daylight-saving transitions.

It walks *real* time in fixed steps (a minute, or a second) and watches the local wall clock:
the wall-clock slots passed in one step are those after the latest wall-clock time seen so far
and up to the current one. A normal step passes one slot; a spring-forward step passes the whole
gap (its slots fire at that step, once); during a fall-back repeat the wall clock is behind the
latest seen, so nothing fires a second time. That is the rule of ``arangotasks.cron``, derived
independently of its code (and of zoneinfo's fold handling).
"""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

Match = Callable[[datetime], bool]


def field(spec: str, low: int, high: int) -> set[int]:
    """The values of one cron field: ``*``, ``*/n``, ``a``, ``a,b`` (all this oracle needs)."""
    if spec == "*":
        return set(range(low, high + 1))
    if spec.startswith("*/"):
        return set(range(low, high + 1, int(spec[2:])))
    return {int(part) for part in spec.split(",")}


def matcher(expression: str) -> Match:
    """A predicate on naive wall-clock times for an expression with ``*`` day fields."""
    parts = expression.split()
    if len(parts) == 5:
        parts.insert(0, "0")
    seconds, minutes, hours = (field(p, 0, 59 if i < 2 else 23) for i, p in enumerate(parts[:3]))
    assert parts[3:] == ["*", "*", "*"], "the oracle only knows time-of-day expressions"
    return lambda w: w.second in seconds and w.minute in minutes and w.hour in hours


def transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[int]:
    """Epoch seconds at which ``tz``'s UTC offset changes between two aware times."""
    found = []
    ts, stop = int(start.timestamp()), int(end.timestamp())
    offset = datetime.fromtimestamp(ts, tz).utcoffset()
    while ts < stop:
        nxt = ts + 3600
        if datetime.fromtimestamp(nxt, tz).utcoffset() != offset:
            lo, hi = ts, nxt
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if datetime.fromtimestamp(mid, tz).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
            offset = datetime.fromtimestamp(nxt, tz).utcoffset()
        ts = nxt
    return found


def oracle(match: Match, tz: ZoneInfo, start: int, end: int, step: int) -> Iterator[float]:
    """Fire instants in (start, end] by walking real time ``step`` seconds at a time (``start``
    and every slot on multiples of ``step``)."""
    one = timedelta(seconds=step)
    high = datetime.fromtimestamp(start, tz).replace(tzinfo=None)
    for ts in range(start + step, end + 1, step):
        wall = datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
        if wall <= high:
            continue  # a repeated wall-clock time: already fired at its first occurrence
        slot, fire = high + one, False
        while slot <= wall and not fire:
            fire = match(slot)
            slot += one
        high = wall
        if fire:
            yield float(ts)

"""Cron expressions in a time zone: which instants they name, under explicit DST rules.

cronsim parses and matches the expression; it walks *naive local wall-clock time* here (no
time zone given to it), so it never sees a daylight-saving transition. This module maps each
wall-clock slot to a real instant:

- a slot that exists once is that instant;
- a slot in a gap (spring forward: the local time does not exist) fires once, at the first
  valid instant after the gap (the transition itself); several slots in one gap fire once;
- a slot in a repeated hour (fall back) fires once, at its first occurrence. So an hourly job
  fires once per *wall-clock* slot: in Berlin's fall-back night ``0 * * * *`` fires at 02:00
  CEST and next at 03:00 CET, two real hours later; a ``* * * * * *`` job is silent during the
  second pass of the repeated hour.

A daily job therefore runs exactly once per local day, also on days without a midnight
(America/Santiago) and with 30-minute shifts (Australia/Lord_Howe). (cronsim's own zone handling
follows Debian cron and, for 6-field expressions, was seen to skip a spring-forward day.)
"""

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

# The ``@`` shortcuts of Vixie/Debian cron, which cronsim refuses.
SHORTCUTS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
# Slots remembered per parsed expression: every task of an expression asks for the slot after
# the same slot at the same moment (1,000 ``* * * * * *`` tasks: 1,000 times a second).
_MEMO_SIZE = 64
_MISSING = object()


class CronError(ValueError):
    """A bad expression or time zone; the message says why (for a 400 naming the field)."""


@functools.lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``CronError`` when there is none."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise CronError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            f"unknown time zone {name!r}: expected an IANA name such as 'Europe/Berlin'"
        ) from None


def _wall(ts: float, tz: ZoneInfo) -> datetime:
    """The naive local wall-clock time at epoch second ``ts``."""
    return datetime.fromtimestamp(ts, tz).replace(tzinfo=None)


def _first_after(lo: int, hi: int, tz: ZoneInfo, wall: datetime) -> int:
    """The first whole epoch second in (lo, hi] whose wall-clock time is past ``wall``; the wall
    clock is monotonic on that interval (a gap, not a fold, lies between)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _wall(mid, tz) > wall:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed expression in a zone. ``next_after`` and ``after`` give real instants."""

    expression: str
    timezone: str
    _sim: CronSim
    _tz: ZoneInfo
    # next_after's answers by argument (a pure function of it); the oldest go first.
    _memo: dict[float, float | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def _slots(self, start: datetime) -> Iterator[datetime]:
        """Naive wall-clock slots strictly after ``start`` (whole seconds)."""
        sim = copy.copy(self._sim)  # parsed once; only its cursor differs
        sim.dt = start.replace(microsecond=0)
        sim.skip_initial_tick = False
        return sim

    def instant(self, slot: datetime) -> float:
        """The epoch second at which the wall-clock ``slot`` fires (see the module rules)."""
        ts = slot.replace(tzinfo=self._tz, fold=0).timestamp()  # fold=0: the first occurrence
        if _wall(ts, self._tz) == slot:
            return ts
        # A gap: fold=0 and fold=1 read the slot with the offsets before and after it, and the
        # transition lies between those two instants.
        other = slot.replace(tzinfo=self._tz, fold=1).timestamp()
        lo, hi = int(min(ts, other)) - 1, int(max(ts, other)) + 1
        return float(_first_after(lo, hi, self._tz, slot))

    def _start(self, ts: float) -> datetime:
        """Where to begin walking wall-clock slots for instants after ``ts``."""
        local = datetime.fromtimestamp(ts, self._tz)
        wall = local.replace(tzinfo=None)
        if local.fold == 1:
            first = wall.replace(tzinfo=self._tz, fold=0)
            shift = (first.utcoffset() or timedelta()) - (local.utcoffset() or timedelta())
            if shift > timedelta():
                # ``ts`` is in the second pass of a repeated hour: every slot of that hour has
                # fired (at its first occurrence), so start at the end of the repeat. The
                # repeat began at most ``shift`` before ``ts``.
                moment = int(ts)
                lo = moment - int(shift.total_seconds()) - 1
                while moment - lo > 1:
                    mid = (lo + moment) // 2
                    if datetime.fromtimestamp(mid, self._tz).utcoffset() == local.utcoffset():
                        moment = mid
                    else:
                        lo = mid
                return max(wall, _wall(moment, self._tz) + shift - _SECOND)
        return wall

    def after(self, ts: float) -> Iterator[float]:
        """The instants strictly after epoch second ``ts``, in order, without repeats."""
        last = ts
        for slot in self._slots(self._start(ts)):
            at = self.instant(slot)
            if at > last:
                last = at
                yield at

    def next_after(self, ts: float) -> float | None:
        """The first instant strictly after ``ts``; ``None`` when none comes within 50 years."""
        memo = self._memo
        known = memo.get(ts, _MISSING)
        if known is not _MISSING:
            return known  # type: ignore[return-value]  # a float or None, stored below
        at = next(iter(self.after(ts)), None)
        if len(memo) >= _MEMO_SIZE:
            del memo[next(iter(memo))]
        memo[ts] = at
        return at


@functools.lru_cache(maxsize=4096)
def parse(expression: str, timezone: str = "UTC") -> Cron:
    """Parse a 5-field (minute first) or 6-field (second first) expression, or a shortcut.

    Raises ``CronError`` with the reason (bad field, unknown zone, never fires).
    """
    tz = zone(timezone)
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in SHORTCUTS:
            raise CronError(f"unknown shortcut {text!r}: expected one of {', '.join(SHORTCUTS)}")
        text = SHORTCUTS[text.lower()]
    if len(text.split()) not in (5, 6):
        raise CronError("expected 5 fields (minute hour day month weekday) or 6 (seconds first)")
    try:
        sim = CronSim(text, _EPOCH)
    except CronSimError as exc:
        raise CronError(str(exc).lower()) from None
    except (ValueError, IndexError, KeyError):
        raise CronError("cannot parse the expression") from None
    cron = Cron(expression, timezone, sim, tz)
    if cron.next_after(datetime.now(UTC).timestamp()) is None:
        raise CronError("the expression never fires")
    return cron

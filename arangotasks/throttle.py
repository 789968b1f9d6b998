"""Failed logins slowed down per user and per client address: token buckets.

Every failed login takes a token from the bucket of its user and from that of its address; a
bucket holds ``burst`` tokens and gains ``rate`` per second. While either bucket is empty, logins
for that user or from that address are answered 429 at once, without looking at the password, so
guessing cannot go faster than ``rate`` per second. Nothing sleeps: the event loop and every
other user go on as before. A successful login takes no token.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

# Address buckets are made by whoever connects: keep at most this many (full ones go first).
MAX_BUCKETS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class LoginThrottle:
    """Token buckets of failed logins; keys are ``("user", name)`` and ``("addr", address)``."""

    def __init__(
        self, burst: int, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.rate = rate
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _level(self, key: tuple[str, str], now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.burst)
        return min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)

    def retry_after(self, keys: list[tuple[str, str]]) -> float:
        """Seconds until every key may try again (0 = now)."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            level = self._level(key, now)
            if level < 1.0:
                wait = max(wait, (1.0 - level) / self.rate)
        return wait

    def failed(self, keys: list[tuple[str, str]]) -> None:
        now = self._clock()
        for key in keys:
            level = self._level(key, now)
            self._buckets.pop(key, None)  # re-inserted last: the dict stays in age order
            self._buckets[key] = _Bucket(max(0.0, level - 1.0), now)
        if len(self._buckets) > MAX_BUCKETS:
            self._prune(now)

    def _prune(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]
        while len(self._buckets) > MAX_BUCKETS:
            del self._buckets[next(iter(self._buckets))]  # the oldest failure

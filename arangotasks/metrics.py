"""Prometheus metrics of one server: a ``CollectorRegistry`` per app (never the global default).

Run counters and histograms are plain integers updated by a run listener of the registry;
everything that is a state (tasks, workers, queue) is read when a scraper asks. One custom
collector turns both into metric families, and prometheus_client writes the exposition.
"""

import bisect
import functools
import inspect
import itertools
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast, runtime_checkable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from arangotasks.auth import ANONYMOUS_SUPERUSER
from arangotasks.errors import StoreUnavailableError
from arangotasks.models import Run, RunStatus, RunTrigger
from arangotasks.registry import Registry
from arangotasks.sandbox.pool import PoolStats
from arangotasks.store.base import TaskStore

# Seconds; runs go from a millisecond to the longest allowed timeout (an hour by default).
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
LATENESS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60)
# Label values are bounded: any other method is counted as "other".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@runtime_checkable
class _ReportsStats(Protocol):
    def stats(self) -> PoolStats: ...


class CountingStore:
    """A store that counts the ``StoreUnavailableError`` of every call and is otherwise the
    store it wraps (attribute access is passed through, wrapped coroutine methods are cached)."""

    def __init__(self, inner: TaskStore) -> None:
        self._inner = inner
        self.errors = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                return await attr(*args, **kwargs)
            except StoreUnavailableError:
                self.errors += 1
                raise

        setattr(self, name, counted)  # the next lookup finds it without __getattr__
        return counted


def counting(store: TaskStore) -> tuple[TaskStore, CountingStore]:
    """``store`` wrapped for counting: the same object typed as a store and as the counter."""
    wrapper = CountingStore(store)
    return cast(TaskStore, wrapper), wrapper


class _StateCollector(Collector):
    """Gauges and counters read from the registry, the worker pool and the notifier on scrape."""

    def __init__(self, metrics: "Metrics") -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        runs = CounterMetricFamily(
            "arangotasks_runs", "Finished runs", labels=["status", "database"]
        )
        for labels, count in sorted(metrics.runs.items()):
            runs.add_metric(list(labels), count)
        yield runs
        yield metrics.duration.family()
        yield metrics.lateness.family()
        requests = CounterMetricFamily(
            "arangotasks_http_requests", "HTTP requests answered", labels=["method", "status"]
        )
        for labels, count in sorted(metrics.requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        tasks = GaugeMetricFamily(
            "arangotasks_tasks", "Registered tasks", labels=["type", "database"]
        )
        tally = Tally(
            ("periodic" if t.periodic else "timed", t.database)
            for t in metrics.registry.visible(ANONYMOUS_SUPERUSER)
        )
        for (kind, database), count in sorted(tally.items()):
            tasks.add_metric([kind, database], count)
        yield tasks
        sandbox = metrics.registry.sandbox
        stats = sandbox.stats() if isinstance(sandbox, _ReportsStats) else PoolStats(0, 0, 0, 0)
        yield GaugeMetricFamily(
            "arangotasks_runs_queued", "Runs waiting for a free worker", value=stats.waiting
        )
        yield GaugeMetricFamily(
            "arangotasks_workers", "Live JavaScript worker processes", value=stats.workers
        )
        yield GaugeMetricFamily(
            "arangotasks_workers_busy", "Workers running a task now", value=stats.busy
        )
        yield CounterMetricFamily(
            "arangotasks_worker_restarts",
            "Workers started to replace one that died or was killed",
            value=stats.restarts,
        )
        store_errors = metrics.store_errors() if metrics.store_errors is not None else 0
        yield CounterMetricFamily(
            "arangotasks_store_errors",
            "Store calls that failed because the store was unavailable",
            value=store_errors,
        )
        for name, help_text, read in metrics.extra_counters:
            yield CounterMetricFamily(name, help_text, value=read())


class _Histogram:
    """Bucket counts kept as plain integers: an observation is a bisect and an increment (a
    prometheus_client ``Histogram`` takes locks, several times the cost on the run path)."""

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.help = help_text
        self.bounds = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def family(self) -> HistogramMetricFamily:
        cumulative = list(itertools.accumulate(self.counts))
        bounds = [repr(float(bound)) for bound in self.bounds] + ["+Inf"]  # Go float style
        return HistogramMetricFamily(
            self.name,
            self.help,
            buckets=list(zip(bounds, cumulative, strict=True)),
            sum_value=self.sum,
        )


class Metrics:
    """The metrics of one app. ``observe_run`` is a registry run listener.

    Everything is kept in plain integers and exported by one collector at scrape time, so that
    a run or a request costs a dictionary increment; ``prometheus_client`` writes the format.

    :param store_errors: reads the number of failed store calls (from :class:`CountingStore`).
    """

    def __init__(self, registry: Registry, store_errors: Callable[[], int] | None = None) -> None:
        self.registry = registry
        self.store_errors = store_errors
        # (name without _total, help, reader): counters other modules own (e.g. the notifier).
        self.extra_counters: list[tuple[str, str, Callable[[], int]]] = []
        self.runs: Tally[tuple[str, str]] = Tally()  # (status, database) -> finished runs
        self.requests: Tally[tuple[str, str]] = Tally()  # (method, status) -> answers
        self.duration = _Histogram(
            "arangotasks_run_duration_seconds",
            "Run time in a worker (startedAt to finishedAt)",
            DURATION_BUCKETS,
        )
        self.lateness = _Histogram(
            "arangotasks_run_start_lateness_seconds",
            "Delay from a scheduled run's due time until a worker took it",
            LATENESS_BUCKETS,
        )
        self.prometheus = CollectorRegistry(auto_describe=True)
        self.prometheus.register(_StateCollector(self))
        registry.run_listeners.append(self.observe_run)

    def observe_run(self, run: Run) -> None:
        self.runs[run.status.value, run.database] += 1
        if run.status is RunStatus.CANCELED or run.started_at is None:
            return  # it never ran
        if run.finished_at is not None:
            self.duration.observe(max(0.0, run.finished_at - run.started_at))
        if run.trigger is RunTrigger.SCHEDULE:
            self.lateness.observe(max(0.0, run.started_at - run.scheduled_at))

    def count_request(self, method: str, status: int) -> None:
        self.requests[method if method in HTTP_METHODS else "other", str(status)] += 1

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.prometheus)

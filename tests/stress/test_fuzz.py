"""Schemathesis fuzzing of a real ``arangotasks serve`` process, from ``arangotasks/openapi.json``.

Every operation of the spec gets positive and negative (schema-violating) requests, with good,
missing and bad credentials, and with ``{database}`` and ``{id}`` both random and pinned to ones
that exist. Checks: never a 5xx, every 4xx/5xx body is ArangoDB's error body, and status, content
type and body match the spec.

- ``test_fuzz_bounded`` (e2e, normal suite): a few derandomised examples per operation, < 60 s.
- ``test_fuzz_long`` (stress): a random sweep of 10 examples per operation and mode, then
  ``FUZZ_MAX_EXAMPLES`` (default 200) per operation and mode, round-robin, until ``STRESS_SECONDS``
  (default 300) have passed (checked between operations).
"""

import itertools
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ROOT, basic  # noqa: E402
from tests.e2e.server import ServerProcess  # noqa: E402

SPEC_PATH = str(files("arangotasks").joinpath("openapi.json"))
KNOWN_TASK = "fuzz-known"
KNOWN_DATABASES = ("_system", "testdb")
ERROR_KEYS = {"error", "errorNum", "errorMessage", "code"}
# Mostly root, so that requests get past authentication; sometimes none or bad credentials.
CREDENTIALS = [
    ROOT,
    ROOT,
    ROOT,
    ROOT,
    {},
    basic("root", "wrong"),
    {"Authorization": "bearer x.y.z"},
]


def arango_error_body(ctx, response, case):
    """Every 4xx/5xx body is ``{"error":true,"errorNum":N,"errorMessage":"...","code":STATUS}``."""
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(
            f"{response.status_code} body is not JSON: {response.content[:200]!r}"
        ) from None
    ok = (
        isinstance(body, dict)
        and set(body) == ERROR_KEYS
        and body["error"] is True
        and type(body["errorNum"]) is int
        and isinstance(body["errorMessage"], str)
        and body["code"] == response.status_code
    )
    if not ok:
        raise AssertionError(f"{response.status_code} body is not an ArangoDB error: {body!r}")
    return None


CHECKS = [
    not_a_server_error,
    arango_error_body,
    content_type_conformance,
    status_code_conformance,
    response_schema_conformance,
]


@dataclass
class FuzzReport:
    seconds: float = 0.0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # "positive GET /path" -> error text

    def summary(self) -> str:
        statuses = dict(sorted(self.statuses.items()))
        lines = [f"{self.requests} requests in {self.seconds:.0f} s, statuses {statuses}"]
        lines += [f"FAILED {name}:\n{text}" for name, text in self.failures.items()]
        return "\n".join(lines)


def case_strategies(operation, mode: GenerationMode):
    """Random parameters, plus the same with ``{database}``/``{id}`` pinned to existing ones."""
    strategy = operation.as_strategy(mode)
    names = {p.name for p in operation.path_parameters}
    pinned: dict[str, str] = {}
    if "database" in names:
        pinned["database"] = KNOWN_DATABASES[0]
    if "id" in names:
        pinned["id"] = KNOWN_TASK
    if pinned:
        strategy = strategy | operation.as_strategy(mode, path_parameters=pinned)
    return strategy


def fuzz_operation(operation, mode, base_url, session, report, *, max_examples, derandomize):
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=derandomize,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
    )
    @given(case=case_strategies(operation, mode), credentials=st.sampled_from(CREDENTIALS))
    def fuzz(case, credentials):
        report.requests += 1
        response = case.call(base_url=base_url, session=session, headers=credentials, timeout=30)
        report.statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=credentials)

    fuzz()


def ensure_known_task(base_url: str, session: requests.Session) -> None:
    """(Re)create the task the pinned ``{id}`` points at (fuzzed DELETEs remove it)."""
    body = {"command": "return params;", "params": {"n": 1}, "period": 3600, "offset": 3600}
    resp = session.put(f"{base_url}/_api/tasks/{KNOWN_TASK}", json=body, headers=ROOT, timeout=30)
    assert resp.status_code in (200, 409), resp.text


MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


class Fuzzer:
    """Fuzz operations one at a time; failures are collected per operation and mode, not raised."""

    def __init__(self, base_url: str, session: requests.Session, *, derandomize: bool):
        self.base_url = base_url
        self.session = session
        self.derandomize = derandomize
        self.report = FuzzReport()
        schema = schemathesis.openapi.from_path(SPEC_PATH)
        operations = [result.ok() for result in schema.get_all_operations()]
        self.pairs = [(operation, mode) for operation in operations for mode in MODES]
        ensure_known_task(base_url, session)
        # A manual run, so that the runs API has a record to show.
        session.post(f"{base_url}/_api/tasks/{KNOWN_TASK}/run", headers=ROOT, timeout=30)

    def fuzz(self, operation, mode, max_examples: int) -> None:
        name = f"{mode.value} {operation.label}"
        if name in self.report.failures:
            return  # one (shrunk) failure per operation and mode is enough
        ensure_known_task(self.base_url, self.session)
        try:
            fuzz_operation(
                operation,
                mode,
                self.base_url,
                self.session,
                self.report,
                max_examples=max_examples,
                derandomize=self.derandomize,
            )
        except Unsatisfiable as exc:
            # An operation without parameters (GET /_api/health/live) has no schema-violating
            # request: nothing to fuzz in negative mode.
            if mode is not GenerationMode.NEGATIVE:
                self.report.failures[name] = f"Unsatisfiable: {exc}"[:3000]
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
            self.report.failures[name] = f"{type(exc).__name__}: {exc}"[:3000]


def run_fuzz(
    base_url: str, *, sweep: int, max_examples: int = 0, seconds: float = 0, derandomize: bool
) -> FuzzReport:
    """A sweep of ``sweep`` examples per operation and mode, then, until ``seconds`` have passed,
    ``max_examples`` per operation and mode, round-robin (the deadline is checked between them).
    """
    started = time.monotonic()
    with requests.Session() as session:
        fuzzer = Fuzzer(base_url, session, derandomize=derandomize)
        for operation, mode in fuzzer.pairs:
            fuzzer.fuzz(operation, mode, sweep)
        deep = itertools.cycle(fuzzer.pairs) if seconds > 0 else iter(())
        for operation, mode in deep:
            if time.monotonic() - started >= seconds:
                break
            fuzzer.fuzz(operation, mode, max_examples)
    fuzzer.report.seconds = time.monotonic() - started
    return fuzzer.report


class FakeResponse:
    def __init__(self, status_code: int, content: bytes):
        self.status_code = status_code
        self.content = content

    def json(self):
        return json.loads(self.content)


@pytest.mark.parametrize(
    "content",
    [
        b"Bad Request",
        b"[]",
        b'{"error":true,"errorNum":10,"errorMessage":"x"}',
        b'{"error":true,"errorNum":10,"errorMessage":"x","code":500}',
        b'{"error":false,"errorNum":10,"errorMessage":"x","code":400}',
        b'{"error":true,"errorNum":"10","errorMessage":"x","code":400}',
        b'{"error":true,"errorNum":10,"errorMessage":"x","code":400,"extra":1}',
    ],
)
def test_error_body_check_rejects_anything_else(content):
    with pytest.raises(AssertionError):
        arango_error_body(None, FakeResponse(400, content), None)


def test_error_body_check_accepts_arango_errors():
    good = b'{"error":true,"errorNum":10,"errorMessage":"x","code":400}'
    assert arango_error_body(None, FakeResponse(400, good), None) is None
    assert arango_error_body(None, FakeResponse(200, b"not json"), None) is None


@pytest.fixture
def server(tmp_path, users_file):
    """A real server with the test users (testdb, alice, bob...), stopped at the end."""
    # The fuzzer sends wrong credentials on purpose; the failed-login throttle (429) is not
    # what it tests, and would answer its own correctly authenticated requests 429 too.
    process = ServerProcess(tmp_path / "data", users_file, ARANGOTASKS_LOGIN_BURST="1000000")
    process.start()
    yield process
    process.stop()


def server_errors(server) -> list[str]:
    """The server's ERROR log lines (each distinct message once), for the report."""
    lines = [line for line in server.output().splitlines() if " ERROR " in line]
    return list(dict.fromkeys(line.split(" ", 2)[-1][:300] for line in lines))


def assert_clean(report: FuzzReport, server) -> None:
    print(report.summary())
    print("server ERROR lines:", *server_errors(server), sep="\n  ")
    resp = requests.get(f"{server.url}/_api/version", headers=ROOT, timeout=10)
    assert resp.status_code == 200, "the server stopped answering after the fuzz run"
    assert server.proc.poll() is None
    assert not report.failures, (
        report.summary() + "\n\nserver log tail:\n" + server.output()[-4000:]
    )


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_fuzz_bounded(server):
    report = run_fuzz(server.url, sweep=10, derandomize=True)
    assert report.requests > 300
    assert_clean(report, server)


@pytest.mark.stress
@pytest.mark.timeout(0)
def test_fuzz_long(server):
    report = run_fuzz(
        server.url,
        sweep=10,
        max_examples=int(os.environ.get("FUZZ_MAX_EXAMPLES", "200")),
        seconds=float(os.environ.get("STRESS_SECONDS", "300")),
        derandomize=False,
    )
    assert_clean(report, server)

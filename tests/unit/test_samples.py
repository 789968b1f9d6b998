"""Every command in sample_commands/ compiles, opens with a header comment and does what its
header says."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from dirty_equals import IsApprox, IsInt, IsJson, IsStr

from arangotasks.models import RunOutcome
from arangotasks.sandbox import Limits, QuickJSSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

SAMPLES = Path(__file__).resolve().parents[2] / "sample_commands"


def ok(output: list[Any], result: Any) -> RunOutcome:
    return RunOutcome(ok=True, result_json=IsJson(result), output=output)


# file name -> (params JSON, expected outcome)
CASES: dict[str, tuple[str | None, RunOutcome]] = {
    "heartbeat.js": (
        '{"service": "billing"}',
        ok([IsStr(regex=r"heartbeat billing \d{4}-\d\d-\d\dT[\d:.]+Z")], IsInt(gt=1.7e12)),
    ),
    "params_echo.js": (
        '"abc"',
        ok(["params type: string", "params value: abc"], {"type": "string", "value": "abc"}),
    ),
    "compute_primes.js": (
        '{"limit": 100000}',
        ok(
            ["primes below 100000: 9592 (largest 99991)"],
            {"limit": 100000, "count": 9592, "largest": 99991},
        ),
    ),
    "deliberate_error.js": (
        '{"reason": "no rows"}',
        RunOutcome(
            ok=False,
            output=["checking the nightly report..."],
            error={
                "type": "exception",
                "name": "Error",
                "message": "deliberate failure: no rows",
                "stack": IsStr(regex=r"(?s)\s+at checkReport .*at anonymous .*"),
            },
        ),
    ),
    "aggregate_stats.js": (
        '{"values": [4, 1, 3, 2]}',
        ok(
            ["n=4 min=1 max=4 mean=2.500"],
            {
                "count": 4,
                "sum": 10,
                "min": 1,
                "max": 4,
                "mean": 2.5,
                "median": 2.5,
                "stddev": IsApprox(1.118034),
            },
        ),
    ),
    "async_report.js": (
        '{"items": ["x", "y"]}',
        ok(["processed X", "processed Y"], {"processed": 2}),
    ),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[QuickJSSandbox]:
    sandbox = QuickJSSandbox(workers=2, limits=Limits(timeout=5.0))
    await sandbox.start()
    yield sandbox
    await sandbox.close()


# Samples that call out, run against a local server in test_http_samples.py.
HTTP_SAMPLES = {"webhook_post.js", "http_health_check.js"}
# Samples that use db, run against the ArangoDB contract double in tests/arangodb/test_db_e2e.py.
DB_SAMPLES = {"db_cleanup_old.js", "db_counter.js", "db_report_by_example.js"}


async def test_every_sample_has_a_case():
    others = HTTP_SAMPLES | DB_SAMPLES
    assert sorted(path.name for path in SAMPLES.glob("*.js")) == sorted(set(CASES) | others)


@pytest.mark.parametrize("name", sorted(DB_SAMPLES))
async def test_db_samples_compile_and_say_what_they_do(sandbox, name):
    command = (SAMPLES / name).read_text(encoding="utf-8")
    assert command.startswith("// "), "a sample opens with a header comment"
    assert "params" in command.split("\n\n")[0] or "params:" in command
    assert await sandbox.compile_error(command) is None


@pytest.mark.parametrize("name", sorted(CASES))
async def test_sample(sandbox, name):
    command = (SAMPLES / name).read_text(encoding="utf-8")
    assert command.startswith("// "), "a sample opens with a header comment"
    assert "params" in command.split("\n\n")[0], "the header describes params"
    assert await sandbox.compile_error(command) is None
    params_json, expected = CASES[name]
    assert await sandbox.run(command, params_json, label=name) == expected


@pytest.mark.parametrize(
    ("name", "params_json", "message"),
    [
        ("compute_primes.js", '{"limit": -1}', "params.limit must be an integer"),
        ("aggregate_stats.js", '{"values": []}', "params.values must be a non-empty array"),
        ("aggregate_stats.js", '{"values": [1, "2"]}', "params.values[1] is not a finite number"),
    ],
)
async def test_samples_reject_bad_params(sandbox, name, params_json, message):
    command = (SAMPLES / name).read_text(encoding="utf-8")
    outcome = await sandbox.run(command, params_json)
    assert outcome.error is not None
    assert outcome.error["message"].startswith(message)


async def test_compute_primes_hits_the_memory_limit(sandbox):
    command = (SAMPLES / "compute_primes.js").read_text(encoding="utf-8")
    outcome = await sandbox.run(command, '{"limit": 1e8}', Limits(memory_bytes=16 << 20))
    assert outcome.error is not None
    assert outcome.error["type"] == "memory"

"""The benchmarks that drive arangotasks' internals (not only its HTTP API) still run: a quick
pass of each, so that an internal change that breaks ``make bench`` fails ``make test`` (the
sandbox cost benchmark broke once when ``Registry.run_now`` became a coroutine)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_the_benchmarks_on_internals_run_in_quick_mode(tmp_path):
    out = tmp_path / "results.json"
    names = "sandbox_cost,scale,ui_pages,http_calls"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", names, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    found = results.get("benchmarks", results)
    assert set(names.split(",")) <= set(found), sorted(found)

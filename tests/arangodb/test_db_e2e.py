"""The db sample commands, unchanged ArangoDB task commands, through a real ``arangotasks serve``
against the contract double (per-database configuration from the config file)."""

import json
import time
from pathlib import Path

import pytest

from tests.arangodb.double import Double
from tests.arangodb.server import run_double
from tests.conftest import USERS_TOML
from tests.e2e.http import Http
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

SAMPLES = Path(__file__).resolve().parents[2] / "sample_commands"


@pytest.fixture
def setup(tmp_path):
    double = Double(user="tasks", password="double-secret-pw", databases=("testdb", "reporting"))
    with run_double(double) as url:
        users = tmp_path / "users.toml"
        # testdb's tasks use ArangoDB's "reporting" database; _system has no ArangoDB at all.
        users.write_text(
            USERS_TOML
            + f"""
[arangodb.databases.testdb]
url = "{url}"
database = "reporting"
user = "tasks"
password = "double-secret-pw"
"""
        )
        server = ServerProcess(tmp_path / "data", users)
        server.start()
        try:
            yield double, server, Http(server.url)
        finally:
            server.stop()


def run_sample(http: Http, name: str, params: dict, database: str = "testdb") -> dict:
    command = (SAMPLES / name).read_text()
    task = http.ok(
        "POST",
        f"/_db/{database}/_api/tasks",
        {"name": name, "command": command, "params": params, "offset": 3600},
    )
    http.ok("POST", f"/_db/{database}/_api/tasks/{task['id']}/run")
    return http.wait_runs(f"taskIds={task['id']}", 1, within=30)["results"][0]


def test_sample_commands_against_the_double(setup):
    double, server, http = setup
    reporting = double.databases["reporting"]
    reporting.collections["logs"] = {}
    reporting.ids["logs"] = reporting.tick()
    now_ms = int(time.time() * 1000)
    for index, age_days in enumerate([1, 40, 50, 2, 90]):
        reporting.insert("logs", {"_key": f"l{index}", "time": now_ms - age_days * 86400_000})
    run = run_sample(http, "db_cleanup_old.js", {"collection": "logs", "maxAgeDays": 30})
    assert run["status"] == "succeeded", run["error"]
    assert run["result"]["removed"] == 3
    assert sorted(reporting.collections["logs"]) == ["l0", "l3"]
    assert run["output"][0].startswith("removed 3 document(s) older than ")

    values = [run_sample(http, "db_counter.js", {"key": "nightly"})["result"] for _ in range(3)]
    assert values == [1, 2, 3]
    assert reporting.collections["counters"]["nightly"]["value"] == 3

    reporting.collections["orders"] = {}
    reporting.ids["orders"] = reporting.tick()
    for amount, status in [(10, "open"), (5, "closed"), (7.5, "open")]:
        reporting.insert("orders", {"amount": amount, "status": status})
    run = run_sample(http, "db_report_by_example.js", {"collection": "orders"})
    assert run["status"] == "succeeded", run["error"]
    assert run["result"] == {"count": 2, "total": 17.5}
    [report] = reporting.collections["reports"].values()
    assert report["count"] == 2 and report["example"] == {"status": "open"}
    # Every call went to the configured database, with the configured user, and is recorded.
    assert all(path.startswith("/_db/reporting/") for _, path in double.log)
    assert run["requests"] and all("/_db/reporting/_api/" in r["url"] for r in run["requests"])
    assert "double-secret-pw" not in json.dumps(run) + server.output()


def test_a_database_without_a_target_keeps_the_clear_error(setup):
    double, _, http = setup
    run = run_sample(http, "db_counter.js", {}, database="_system")
    assert run["status"] == "failed"
    assert "no ArangoDB is configured for database '_system'" in run["error"]["message"]
    assert double.log == []

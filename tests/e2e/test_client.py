"""The command-line client as a subprocess against a real ``arangotasks serve``; the server runs
with JSON logs and the access log, which are checked here too."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT_PASSWORD, USERS_TOML
from tests.e2e.http import Http
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e

METRICS_TOKEN = "e2e-scrape-token"
ALLOWED_HOOK_HOST = "127.0.0.1:9"  # the discard port: nothing is posted there in these tests


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("client")
    users = base / "users.toml"
    users.write_text(USERS_TOML)
    process = ServerProcess(
        base / "data",
        users,
        ARANGOTASKS_LOG_FORMAT="json",
        ARANGOTASKS_ACCESS_LOG="1",
        ARANGOTASKS_METRICS_TOKEN=METRICS_TOKEN,
        ARANGOTASKS_HTTP_ALLOW=ALLOWED_HOOK_HOST,  # for tasks' notify URLs only
    )
    process.start()
    yield process
    process.stop()


def env_for(server, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARANGOTASKS_")}
    env.update({"ARANGOTASKS_URL": server.url, "ARANGOTASKS_PASSWORD": ROOT_PASSWORD, **extra})
    return env


def cli(server, *args, stdin: str | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "arangotasks", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env or env_for(server),
        timeout=60,
    )


def ok(server, *args, **kwargs) -> str:
    done = cli(server, *args, **kwargs)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def ok_json(server, *args, **kwargs):
    return json.loads(ok(server, *args, "--json", **kwargs))


def documented(server, path: str) -> bool:
    """Whether the server has a route (another helper's routes land on main separately)."""
    spec = Http(server.url).ok("GET", "/_api/openapi.json")
    return path in spec["paths"]


def wait_runs(server, task_id: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = ok_json(server, "tasks", "runs", task_id, "--status", "succeeded,failed")
        if page["total"] >= count:
            return page["results"]
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} runs of {task_id}")


def test_create_list_show_run_runs_delete(server, tmp_path):
    command = tmp_path / "task.js"
    command.write_text('print("hi", params.n);\nreturn params.n * 2;\n')
    created = ok_json(
        server, "tasks", "create", "--file", str(command), "--period", "3600",
        "--offset", "3600", "--params", '{"n": 21}', "--name", "doubler", "--id", "dbl",
    )  # fmt: skip
    assert created["id"] == "dbl" and created["type"] == "periodic" and created["period"] == 3600
    assert created["command"] == (
        '(function (params) { print("hi", params.n);\nreturn params.n * 2;\n } )(params);'
    )
    listed = ok(server, "tasks", "list")
    header, *rows = listed.splitlines()
    assert header.split() == [
        "ID",
        "NAME",
        "SCHEDULE",
        "NEXT",
        "RUN",
        "LAST",
        "FAILURES",
        "DATABASE",
    ]
    row = next(r for r in rows if r.startswith("dbl "))
    # Aligned: each value starts where its header starts.
    assert row[header.index("SCHEDULE") :].startswith("every 1h")
    assert row[header.index("DATABASE") :].startswith("_system")
    assert any(t["id"] == "dbl" for t in ok_json(server, "tasks", "list"))

    shown = ok(server, "tasks", "show", "dbl")
    assert "name:     doubler" in shown
    assert 'command:  print("hi", params.n);' in shown

    done = cli(server, "tasks", "run", "dbl", "--wait")
    assert done.returncode == 0, done.stderr
    assert "result:    42" in done.stdout and "output:    hi 21" in done.stdout
    run = ok_json(server, "tasks", "run", "dbl", "--wait")
    assert run["status"] == "succeeded" and run["result"] == 42

    runs = ok(server, "tasks", "runs", "dbl")
    header, *rows = runs.splitlines()
    assert header.split()[:3] == ["UID", "TASK", "STATUS"]
    assert len(rows) == 2 and all(" succeeded " in r for r in rows)

    assert ok(server, "tasks", "delete", "dbl").strip() == "deleted dbl"
    done = cli(server, "tasks", "show", "dbl")
    assert done.returncode == 1
    assert done.stderr.strip() == "arangotasks: error 1852: task not found"


def test_failed_runs_filter_and_wait_exit_code(server, tmp_path):
    bad = tmp_path / "bad.js"
    bad.write_text("throw new TypeError('nope');")
    task = ok_json(server, "tasks", "create", "--file", str(bad), "--offset", "3600")
    done = cli(server, "tasks", "run", task["id"], "--wait")
    assert done.returncode == 1
    assert "error:     TypeError: nope" in done.stdout
    failed = ok_json(server, "tasks", "runs", "--status", "failed")
    assert failed["results"] and all(r["status"] == "failed" for r in failed["results"])
    table = ok(server, "tasks", "runs", "--status", "failed")
    assert "TypeError: nope" in table
    ok(server, "tasks", "delete", task["id"])


def test_errors_are_one_line_and_exit_non_zero(server, tmp_path):
    done = cli(server, "tasks", "list", "--password", "wrong")
    assert done.returncode == 1
    assert done.stderr == "arangotasks: error 11: not authorized to execute this request\n"
    done = cli(server, "tasks", "list", "--server", "http://127.0.0.1:9")
    assert done.returncode == 3 and "cannot reach" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    good = tmp_path / "ok.js"
    good.write_text("return 1;")
    done = cli(server, "tasks", "create", "--file", str(good), "--params", "{nope")
    assert done.returncode == 2 and "--params is not valid JSON" in done.stderr
    done = cli(server, "tasks", "create", "--file", str(tmp_path / "missing.js"))
    assert done.returncode == 2 and "cannot read" in done.stderr
    broken = tmp_path / "broken.js"
    broken.write_text("return (;")
    done = cli(server, "tasks", "create", "--file", str(broken))
    assert done.returncode == 1
    assert done.stderr == (
        "arangotasks: error 10: cannot compile command: "
        "SyntaxError: unexpected token in expression: ';' (line 1, column 9)\n"
    )
    done = cli(
        server, "tasks", "create", "--file", str(good), "--user", "bob", "--password", "bob-pw"
    )
    assert done.returncode == 1 and done.stderr.startswith("arangotasks: error 11: ")


def test_create_with_a_notify_url(server, tmp_path):
    good = tmp_path / "ok.js"
    good.write_text("return 1;")
    hook = f"http://{ALLOWED_HOOK_HOST}/hook"
    args = ("tasks", "create", "--file", str(good), "--period", "3600", "--offset", "3600")
    task = ok_json(server, *args, "--notify", hook)
    assert list(task)[-1] == "notify" and task["notify"] == hook
    shown = ok(server, "tasks", "show", task["id"])
    assert re.search(rf"^notify: +{re.escape(hook)}$", shown, re.MULTILINE), shown
    done = cli(server, *args, "--notify", "http://127.0.0.1:10/hook")
    assert done.returncode == 1
    assert done.stderr == (
        "arangotasks: error 10: notify: 127.0.0.1 refused: not allowed by ARANGOTASKS_HTTP_ALLOW\n"
    )
    ok(server, "tasks", "delete", task["id"])


def test_user_flags_and_database(server, tmp_path):
    good = tmp_path / "ok.js"
    good.write_text("return 1;")
    alice = ("--user", "alice", "--password", "alice-pw")
    task = ok_json(
        server, "tasks", "create", "--file", str(good), "--offset", "3600",
        "--database", "testdb", *alice,
    )  # fmt: skip
    assert task["database"] == "testdb"
    mine = ok_json(server, "tasks", "list", *alice)
    assert [t["id"] for t in mine] == [task["id"]]
    # Through the environment instead of flags.
    env = env_for(server, ARANGOTASKS_USER="alice", ARANGOTASKS_PASSWORD="alice-pw")
    assert ok_json(server, "tasks", "show", task["id"], env=env)["database"] == "testdb"
    assert ok_json(server, "tasks", "list", "--database", "other") == []
    ok(server, "tasks", "delete", task["id"], *alice)


def test_follow_prints_new_runs_as_they_finish(server, tmp_path):
    good = tmp_path / "tick.js"
    good.write_text("return Date.now();")
    task = ok_json(server, "tasks", "create", "--file", str(good), "--period", "0.2")
    follow = subprocess.Popen(
        [sys.executable, "-m", "arangotasks", "tasks", "runs", task["id"], "--follow",
         "--json", "--interval", "0.2", "--limit", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(server),
    )  # fmt: skip
    try:
        uids = []
        deadline = time.monotonic() + 30
        while len(uids) < 5 and time.monotonic() < deadline:
            line = follow.stdout.readline()
            assert line, follow.stderr.read()
            run = json.loads(line)
            assert run["taskId"] == task["id"] and run["status"] == "succeeded"
            uids.append(run["uid"])
        assert uids == sorted(set(uids)) and len(uids) == 5
    finally:
        follow.terminate()
        follow.wait(10)
    ok(server, "tasks", "delete", task["id"])


def test_cron_pause_and_resume(server, tmp_path):
    if not documented(server, "/_api/tasks/{id}/pause"):
        pytest.skip("POST /_api/tasks/{id}/pause|resume and cron are not on this branch yet")
    good = tmp_path / "ok.js"
    good.write_text("return 1;")
    task = ok_json(server, "tasks", "create", "--file", str(good), "--cron", "0 3 * * *")
    assert task["cron"] == "0 3 * * *"
    assert "cron 0 3 * * *" in ok(server, "tasks", "list")
    assert ok(server, "tasks", "pause", task["id"]).strip() == f"paused {task['id']}"
    assert ok(server, "tasks", "resume", task["id"]).strip() == f"resumed {task['id']}"
    ok(server, "tasks", "delete", task["id"])


def test_secrets(server):
    if not documented(server, "/_api/secrets/{name}"):
        pytest.skip("PUT/GET/DELETE /_api/secrets/{name} are not on this branch yet")
    assert ok(server, "secrets", "set", "api_key", stdin="s3cr3t\n").strip() == "set api_key"
    listed = ok(server, "secrets", "list")
    assert "api_key" in listed and "s3cr3t" not in listed
    assert ok(server, "secrets", "delete", "api_key").strip() == "deleted api_key"
    assert "api_key" not in ok(server, "secrets", "list")


def test_server_logs_are_json_with_access_and_task_lines(server, tmp_path):
    good = tmp_path / "ok.js"
    good.write_text("return 1;")
    task = ok_json(server, "tasks", "create", "--file", str(good), "--offset", "3600")
    ok(server, "tasks", "delete", task["id"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        entries = [json.loads(line) for line in server.output().splitlines() if line.strip()]
        events = {(e.get("event"), e.get("task_id")): e for e in entries}
        if ("task.deleted", task["id"]) in events:
            break
        time.sleep(0.1)
    created = events[("task.created", task["id"])]
    assert created["level"] == "INFO" and created["user"] == "root"
    assert created["database"] == "_system"
    assert ("task.deleted", task["id"]) in events
    access = [e for e in entries if e["logger"] == "arangotasks.access"]
    assert any(f"DELETE /_api/tasks/{task['id']}" in e["message"] for e in access)


def test_a_scraper_reads_the_metrics_with_its_token(server, tmp_path):
    good = tmp_path / "ok.js"
    good.write_text("return 1;")
    task = ok_json(server, "tasks", "create", "--file", str(good), "--offset", "3600")
    ok(server, "tasks", "run", task["id"], "--wait")
    request = urllib.request.Request(
        server.url + "/_admin/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    runs = ok_json(server, "tasks", "runs", "--status", "succeeded", "--limit", "0")["total"]
    key = ("arangotasks_runs_total", (("database", "_system"), ("status", "succeeded")))
    assert samples[key] == runs >= 1
    assert samples[("arangotasks_workers", ())] == 2
    ok(server, "tasks", "delete", task["id"])

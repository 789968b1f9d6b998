"""What a run leaves behind is bounded: result, error and pages of the runs API, and the log."""

import logging

from tests.api.helpers import create, runs, wait_runs
from tests.conftest import ROOT


async def test_a_result_beyond_the_cap_fails_the_run(make_client):
    client = await make_client(result_kb=4)
    big = await create(client, command="print('before'); return 'x'.repeat(5000);")
    small = await create(client, command="return 'x'.repeat(4000);")
    run = (await wait_runs(client, f"taskIds={big['id']}", 1))["results"][0]
    assert run["status"] == "failed" and run["result"] is None
    assert run["error"]["type"] == "result"
    assert "beyond the result limit of 4096 bytes" in run["error"]["message"]
    assert run["output"] == ["before"]
    run = (await wait_runs(client, f"taskIds={small['id']}", 1))["results"][0]
    assert run["status"] == "succeeded" and run["result"] == "x" * 4000


async def test_error_message_and_stack_are_cut(make_client):
    client = await make_client(error_message_kb=1, error_stack_kb=2)
    task = await create(
        client, command="const e = new Error('m'.repeat(5e3)); e.stack = 's'.repeat(9e3); throw e;"
    )
    error = (await wait_runs(client, f"taskIds={task['id']}", 1))["results"][0]["error"]
    assert error["type"] == "exception"
    assert len(error["message"].encode()) <= 1024 and error["message"].endswith("bytes cut]")
    assert len(error["stack"].encode()) <= 2048 and error["stack"].endswith("bytes cut]")


async def test_pages_stop_at_their_byte_limit_and_next_pages_on(make_client):
    client = await make_client(runs_page_mb=0.02)  # about 20 KB: four runs of 5 KB
    task = await create(client, command="return 'r'.repeat(5000);", period=0.01)
    await wait_runs(client, f"taskIds={task['id']}", 12)
    await client.delete(f"/_api/tasks/{task['id']}", headers=ROOT)
    everything = await runs(client, f"taskIds={task['id']}&limit=1000")
    assert len(everything["results"]) < everything["total"]  # capped too
    for reverse in ("false", "true"):
        seen, query = [], f"taskIds={task['id']}&limit=20&reverse={reverse}"
        page = await runs(client, query)
        total = page["total"]
        while True:
            assert 1 <= len(page["results"]) < 20
            assert page["from"] == page["results"][0]["uid"]
            seen += [run["uid"] for run in page["results"]]
            if page["next"] is None:
                break
            page = await runs(client, f"{query}&from={page['next']}")
        assert len(seen) == len(set(seen)) == total
        assert seen == sorted(seen, reverse=reverse == "false")


async def test_a_page_holds_one_run_even_beyond_the_byte_limit(make_client):
    client = await make_client(runs_page_mb=0.001)
    task = await create(client, command="return 'r'.repeat(5000);")
    page = await wait_runs(client, f"taskIds={task['id']}", 1)
    assert len(page["results"]) == 1 and page["results"][0]["result"] == "r" * 5000


async def test_one_escaped_log_line_per_failed_run(make_client, caplog):
    client = await make_client()
    command = "print('y'.repeat(5000)); print('x\\nFORGED'); throw new Error('a\\r\\nFORGED2');"
    with caplog.at_level(logging.INFO):
        task = await create(client, command=command)
        await wait_runs(client, f"taskIds={task['id']}", 1)
        await create(client, command="print('quiet'); return 1;")
        await wait_runs(client, "", 2)
    ours = [r for r in caplog.records if r.name.startswith("arangotasks")]
    # The run's line is the only one that shows its output or its error.
    lines = [r.getMessage() for r in ours if "FORGED" in r.getMessage()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "\n" not in line and "\r" not in line and len(line) < 1000
    assert "a\\r\\nFORGED2" in line and "x\\nFORGED" in line and "failed (exception)" in line
    assert not [r for r in ours if "quiet" in r.getMessage()]  # not at INFO

"""In-process tests of every /_api/tasks route, status and error body."""

import json

import pytest
from dirty_equals import IsFloat, IsStr

from tests.conftest import ALICE, BOB, ROOT

FOR_I = "SyntaxError: expected 'of' or 'in' in for control expression (line 1, column 7)"


def err(num: int, message: str, code: int) -> dict:
    return {"error": True, "errorNum": num, "errorMessage": message, "code": code}


async def post(client, body, path="/_api/tasks", headers=ROOT):
    return await client.post(path, data=json.dumps(body), headers=headers)


async def test_create_and_get_are_equal(client):
    resp = await post(
        client, {"name": "t", "command": "return 1;", "params": {"a": 1}, "offset": 5}
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    created = await resp.json()
    assert created == {
        "id": IsStr(regex=r"^\d+$"),
        "name": "t",
        "created": IsFloat(),
        "type": "timed",
        "offset": 5,
        "command": "(function (params) { return 1; } )(params);",
        "database": "_system",
    }
    assert list(created) == ["id", "name", "created", "type", "offset", "command", "database"]
    got = await client.get(f"/_api/tasks/{created['id']}", headers=ROOT)
    assert got.status == 200
    assert await got.text() == await resp.text()


async def test_periodic_body_text_is_exact(client):
    resp = await post(client, {"id": "p1", "command": "x", "period": 2, "offset": 0.25})
    text = await resp.text()
    body = json.loads(text)
    assert text == (
        '{"id":"p1","name":"user-defined task","created":'
        + json.dumps(body["created"])
        + ',"type":"periodic","period":2,"offset":0.25,'
        '"command":"(function (params) { x } )(params);","database":"_system"}'
    )


@pytest.mark.parametrize("path", ["/_api/tasks/", "/_api/tasks/ignored-suffix", "/_api/tasks/a/b"])
async def test_post_ignores_url_suffixes(client, path):
    resp = await post(client, {"command": "return 1;", "offset": 100}, path=path)
    assert resp.status == 200
    assert (await resp.json())["id"] != "ignored-suffix"


async def test_post_with_body_id_and_duplicate(client):
    body = {"id": "dup", "command": "return 1;", "offset": 100}
    assert (await post(client, body)).status == 200
    resp = await post(client, body)
    assert resp.status == 409
    assert await resp.json() == err(1851, "duplicate task id", 409)


async def test_put_creates_with_url_id_and_never_updates(client):
    body = {"id": "SampleTask", "command": "return 1;", "period": 10}
    resp = await client.put("/_api/tasks/sampleTask", data=json.dumps(body), headers=ROOT)
    assert resp.status == 200
    assert (await resp.json())["id"] == "sampleTask"
    again = await client.put("/_api/tasks/sampleTask", data=json.dumps(body), headers=ROOT)
    assert again.status == 409
    assert (await again.json())["errorNum"] == 1851


async def test_put_bad_command_on_existing_id_is_400_not_409(client):
    await client.put(
        "/_api/tasks/x1", data=json.dumps({"command": "1", "offset": 99}), headers=ROOT
    )
    resp = await client.put("/_api/tasks/x1", data=json.dumps({"command": "for (i"}), headers=ROOT)
    assert await resp.json() == err(10, f"cannot compile command: {FOR_I}", 400)


@pytest.mark.parametrize("path", ["/_api/tasks", "/_api/tasks/", "/_api/tasks/a/b"])
async def test_put_needs_exactly_one_suffix(client, path):
    resp = await client.put(path, data=json.dumps({"command": "1"}), headers=ROOT)
    assert await resp.json() == err(10, "expected PUT /_api/tasks/<task-id>", 400)


async def test_put_parses_the_body_before_the_suffix_check(client):
    resp = await client.put("/_api/tasks", data="{", headers=ROOT)
    assert (await resp.json())["errorNum"] == 600


async def test_empty_string_id_is_invalid(client):
    resp = await post(client, {"id": "", "command": "1"})
    assert await resp.json() == err(1850, "invalid task id", 400)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"command": "1", "period": 0}, err(10, "task period must be specified and positive", 400)),
        (
            {"command": "1", "period": -1},
            err(10, "task period must be specified and positive", 400),
        ),
        ({"name": "no command"}, err(10, "command must be specified", 400)),
        ({"command": 42}, err(10, "command must be specified", 400)),
        ({"command": "for (i"}, err(10, f"cannot compile command: {FOR_I}", 400)),
        (
            {"command": "1", "runAsUser": "someone"},
            err(11, "cannot run task as a different user", 403),
        ),
    ],
    ids=["period-zero", "period-negative", "no-command", "command-number", "syntax", "run-as"],
)
async def test_validation_errors(client, body, expected):
    resp = await post(client, body)
    assert resp.status == expected["code"]
    assert await resp.json() == expected


async def test_runtime_errors_are_not_detected_at_create(client):
    resp = await post(client, {"command": "print(Hello)", "offset": 100})
    assert resp.status == 200


async def test_invalid_json_is_600(client):
    resp = await client.post("/_api/tasks", data="{nope", headers=ROOT)
    body = await resp.json()
    assert (resp.status, body["errorNum"], body["code"]) == (400, 600, 400)
    assert body["errorMessage"].startswith("VPackError error: ")


async def test_string_offset_is_zero_and_string_period_is_timed(client):
    resp = await post(client, {"command": "1", "offset": "5", "period": "5"})
    body = await resp.json()
    assert (body["offset"], body["type"]) == (0, "timed")
    assert "period" not in body


async def test_list_contains_tasks_of_every_database(client):
    await post(client, {"id": "in-system", "command": "1", "offset": 100})
    await post(
        client, {"id": "in-testdb", "command": "1", "offset": 100}, path="/_db/testdb/_api/tasks"
    )
    resp = await client.get("/_db/testdb/_api/tasks", headers=ROOT)
    tasks = {t["id"]: t["database"] for t in await resp.json()}
    assert tasks == {"in-system": "_system", "in-testdb": "testdb"}


async def test_fresh_server_lists_nothing(client):
    resp = await client.get("/_api/tasks", headers=ROOT)
    assert (resp.status, await resp.json()) == (200, [])


async def test_get_superfluous_suffix(client):
    resp = await client.get("/_api/tasks/a/b", headers=ROOT)
    assert await resp.json() == err(601, "superfluous parameter, expecting /_api/tasks[/<id>]", 400)


async def test_get_missing_is_1852(client):
    resp = await client.get("/_api/tasks/nope", headers=ROOT)
    assert await resp.json() == err(1852, "task not found", 404)


async def test_delete(client):
    await post(client, {"id": "d1", "command": "1", "offset": 100})
    resp = await client.delete("/_api/tasks/d1", headers=ROOT)
    assert (resp.status, await resp.text()) == (200, '{"error":false,"code":200}')
    assert (await client.get("/_api/tasks/d1", headers=ROOT)).status == 404
    again = await client.delete("/_api/tasks/d1", headers=ROOT)
    assert await again.json() == err(1852, "task not found", 404)
    # The id can be reused after a delete.
    assert (await post(client, {"id": "d1", "command": "1", "offset": 100})).status == 200


@pytest.mark.parametrize("path", ["/_api/tasks", "/_api/tasks/a/b"])
async def test_delete_needs_one_suffix(client, path):
    resp = await client.delete(path, headers=ROOT)
    assert await resp.json() == err(601, "bad parameter, expecting /_api/tasks/<id>", 400)


async def test_delete_ignores_the_url_database(client):
    await post(client, {"id": "d2", "command": "1", "offset": 100}, path="/_db/testdb/_api/tasks")
    assert (await client.delete("/_db/other/_api/tasks/d2", headers=ROOT)).status == 200


@pytest.mark.parametrize("method", ["PATCH", "HEAD", "OPTIONS"])
async def test_other_methods_are_405(client, method):
    resp = await client.request(method, "/_api/tasks", headers=ROOT)
    assert resp.status == 405
    if method != "HEAD":
        assert await resp.json() == err(405, "method not supported", 405)


async def test_url_encoded_ids(client):
    resp = await post(client, {"id": "a/b c", "command": "1", "offset": 100})
    assert resp.status == 200
    got = await client.get("/_api/tasks/a%2Fb%20c", headers=ROOT)
    assert (await got.json())["id"] == "a/b c"
    assert (await client.delete("/_api/tasks/a%2Fb%20c", headers=ROOT)).status == 200


async def test_unicode_ids_and_names(client):
    body = {"id": "täsk-✓", "name": "名前\u0007", "command": "1", "offset": 100}
    created = await (await post(client, body)).json()
    assert (created["id"], created["name"]) == ("täsk-✓", "名前\u0007")
    got = await client.get("/_api/tasks/t%C3%A4sk-%E2%9C%93", headers=ROOT)
    assert await got.json() == created


async def test_unknown_database_is_1228(client):
    resp = await client.get("/_db/nosuchdb/_api/tasks", headers=ROOT)
    assert await resp.json() == err(1228, "database not found", 404)


async def test_tasks_disabled(make_client):
    client = await make_client(tasks_enabled=False)
    resp = await post(client, {"command": "1"})
    assert await resp.json() == err(11, "JavaScript tasks are disabled", 403)
    assert (await client.get("/_api/tasks", headers=ROOT)).status == 200


async def test_body_too_large_is_413(make_client):
    client = await make_client(max_body_mb=0.01)
    resp = await post(client, {"command": "1", "params": "x" * 20_000})
    body = await resp.json()
    assert (resp.status, body["errorNum"], body["code"]) == (413, 413, 413)


async def test_unknown_path_is_404(client):
    resp = await client.get("/_api/nothing", headers=ROOT)
    assert await resp.json() == err(404, "unknown path '/_api/nothing'", 404)


async def test_read_only_user_cannot_write(client):
    resp = await post(client, {"command": "1"}, headers=BOB)
    body = await resp.json()
    assert (resp.status, body["errorNum"]) == (403, 11)
    assert body["errorMessage"].startswith("registering a task needs db RW permissions")
    await post(client, {"id": "r1", "command": "1", "offset": 100})
    resp = await client.delete("/_api/tasks/r1", headers=BOB)
    assert (resp.status, (await resp.json())["errorNum"]) == (403, 11)
    put = await client.put("/_api/tasks/r2", data=json.dumps({"command": "1"}), headers=BOB)
    assert put.status == 403


async def test_users_see_only_their_own_tasks(client):
    await post(client, {"id": "alices", "command": "1", "offset": 100}, headers=ALICE)
    await post(client, {"id": "roots", "command": "1", "offset": 100})
    alice_list = await (await client.get("/_api/tasks", headers=ALICE)).json()
    assert [t["id"] for t in alice_list] == ["alices"]
    assert (await client.get("/_api/tasks/roots", headers=ALICE)).status == 404
    assert (await client.delete("/_api/tasks/roots", headers=ALICE)).status == 404
    assert (await client.get("/_api/tasks/alices", headers=BOB)).status == 404
    root_list = await (await client.get("/_api/tasks", headers=ROOT)).json()
    assert {t["id"] for t in root_list} == {"alices", "roots"}
    assert (await client.delete("/_api/tasks/alices", headers=ROOT)).status == 200


async def test_run_as_self_is_allowed(client):
    resp = await post(client, {"command": "1", "runAsUser": "alice", "offset": 100}, headers=ALICE)
    assert resp.status == 200


async def test_offset_zero_shows_zero_in_create_and_get(client):
    created = await (await post(client, {"id": "o0", "command": "1", "period": 100})).json()
    got = await (await client.get("/_api/tasks/o0", headers=ROOT)).json()
    assert created["offset"] == got["offset"] == 0

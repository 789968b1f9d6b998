"""arangotasks/openapi.json: a valid OpenAPI 3 document that matches the routes and bodies."""

import asyncio
import json
import re
from importlib.resources import files

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from arangotasks.api import routes
from arangotasks.api.openapi import SPEC_BYTES
from tests.conftest import ROOT

FILE_BYTES = files("arangotasks").joinpath("openapi.json").read_bytes()
SPEC = json.loads(FILE_BYTES)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Sample values for path templates, both the spec's ({id}) and aiohttp's ({tail:.*}).
SAMPLES = {
    "database": "_system",
    "id": "some-task",
    "tail": "some-task",
    "uid": "7",
    "name": "some-secret",
    "user": "root",
}
# What a "*" route must document at least: ArangoDB's four methods.
ANY_METHOD = {"get", "post", "put", "delete"}


def operations():
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: SAMPLES[m.group(1)], template)


def spec_paths_matching(path: str) -> list[str]:
    found = []
    for template in SPEC["paths"]:
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found.append(template)
    return found


def schema_validator(name: str):
    validators = pytest.importorskip("openapi_schema_validator", reason="openapi-spec-validator")
    root = {"components": SPEC["components"], "$ref": f"#/components/schemas/{name}"}
    return validators.OAS30Validator(root, format_checker=validators.oas30_format_checker)


def assert_matches(name: str, instance) -> None:
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in schema_validator(name).iter_errors(instance)
    ]
    assert not errors, f"{name} does not match {instance!r}: {errors}"


def test_spec_is_valid_openapi_3():
    validator = pytest.importorskip(
        "openapi_spec_validator", reason="pip install openapi-spec-validator"
    )
    assert SPEC["openapi"] == "3.0.3"
    validator.validate(SPEC)


def test_handler_serves_the_packaged_file():
    assert SPEC_BYTES == FILE_BYTES


def test_every_route_is_documented():
    for route in routes():
        path = concrete(route.path)
        templates = spec_paths_matching(path)
        assert len(templates) == 1, f"{route.method} {route.path}: documented as {templates}"
        item = SPEC["paths"][templates[0]]
        wanted = ANY_METHOD if route.method == "*" else {route.method.lower()}
        missing = wanted - set(item)
        assert not missing, f"{route.method} {route.path}: {sorted(missing)} not in {templates[0]}"


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, m, _ in operations()])
async def test_every_documented_operation_has_a_route(path, method):
    app = web.Application()
    app.add_routes(routes())
    request = make_mocked_request(method.upper(), concrete(path), app=app)
    match = await app.router.resolve(request)
    assert match.http_exception is None, f"{method.upper()} {path}: {match.http_exception}"
    assert match.route.method in ("*", method.upper())


def test_both_prefixes_are_documented_alike():
    for path, item in SPEC["paths"].items():
        if path.startswith("/_api/"):
            twin = SPEC["paths"].get("/_db/{database}" + path)
            assert twin is not None, f"{path} has no /_db/{{database}} twin"
            assert {m for m in METHODS if m in item} == {m for m in METHODS if m in twin}


def test_every_error_response_is_an_arango_error():
    components = SPEC["components"]["responses"]
    operation_ids = set()
    for path, method, operation in operations():
        assert operation["operationId"] not in operation_ids
        operation_ids.add(operation["operationId"])
        responses = operation["responses"]
        if operation.get("security") != []:  # open routes (login, health) need no credentials
            assert "401" in responses, f"{method} {path}"
        if path.startswith("/_db/"):
            assert "404" in responses, f"{method} {path}: unknown database"
        for status, response in responses.items():
            if int(status) < 400:
                continue
            if "$ref" in response:
                response = components[response["$ref"].rsplit("/", 1)[1]]
            media = response["content"]["application/json"]
            where = f"{method} {path} {status}"
            assert media["schema"] == {"$ref": "#/components/schemas/ArangoError"}, where
            assert_matches("ArangoError", media["example"])
            assert media["example"]["code"] == int(status), where


def test_schema_examples_match_their_schemas():
    assert_matches(
        "Task",
        SPEC["paths"]["/_api/tasks/{id}"]["get"]["responses"]["200"]["content"]["application/json"][
            "example"
        ],
    )
    assert_matches(
        "Run",
        SPEC["paths"]["/_api/runs/{uid}"]["get"]["responses"]["200"]["content"]["application/json"][
            "example"
        ],
    )
    with pytest.raises(AssertionError):
        assert_matches("Task", {"id": 1, "name": "n"})


async def test_served_document_equals_the_file(client):
    for path in ("/_api/openapi.json", "/_db/_system/_api/openapi.json"):
        resp = await client.get(path, headers=ROOT)
        assert resp.status == 200, await resp.text()
        assert resp.content_type == "application/json"
        assert resp.charset == "utf-8"
        assert await resp.read() == FILE_BYTES


async def test_openapi_needs_credentials(client):
    resp = await client.get("/_api/openapi.json")
    assert resp.status == 401
    assert_matches("ArangoError", await resp.json())


async def _finished_run(client, uid: int) -> dict:
    for _ in range(200):
        run = await (await client.get(f"/_api/runs/{uid}", headers=ROOT)).json()
        if run["status"] in ("succeeded", "failed", "canceled"):
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {uid} did not finish: {run}")


async def test_real_bodies_match_the_schemas(client):
    """Every success and error body the server writes, checked against the spec's schemas."""
    body = {
        "name": "n",
        "command": "print(params.x); return 1;",
        "params": {"x": 1},
        "period": 60,
        "offset": 60,
    }
    created = await client.post("/_api/tasks", json=body, headers=ROOT)
    assert created.status == 200
    task = await created.json()
    assert_matches("Task", task)
    timed = await client.put(
        "/_api/tasks/timed-one",
        json={"command": "throw new Error('x')", "offset": 60},
        headers=ROOT,
    )
    assert_matches("Task", await timed.json())
    listed = await (await client.get("/_api/tasks", headers=ROOT)).json()
    for item in listed:
        assert_matches("Task", item)
    detailed = await (
        await client.get(f"/_api/tasks/{task['id']}?details=true", headers=ROOT)
    ).json()
    assert_matches("Task", detailed)

    for task_id in (task["id"], "timed-one"):
        started = await client.post(f"/_api/tasks/{task_id}/run", headers=ROOT)
        assert started.status == 202
        run = await started.json()
        assert_matches("Run", run)
        assert_matches("Run", await _finished_run(client, run["uid"]))
    page = await (await client.get("/_api/runs?limit=1", headers=ROOT)).json()
    assert_matches("RunsPage", page)
    assert page["results"] and page["next"] is not None
    page = await (await client.get(f"/_api/tasks/{task['id']}/runs", headers=ROOT)).json()
    assert_matches("RunsPage", page)
    detailed = await (
        await client.get(f"/_api/tasks/{task['id']}?details=true", headers=ROOT)
    ).json()
    assert_matches("Task", detailed)

    deleted = await client.delete(f"/_api/tasks/{task['id']}", headers=ROOT)
    assert_matches("DeleteResult", await deleted.json())
    for path, name in (
        ("/_api/version?details=true", "Version"),
        ("/_api/collection", "CollectionList"),
        ("/_db/testdb/_api/database/current", "CurrentDatabase"),
    ):
        resp = await client.get(path, headers=ROOT)
        assert resp.status == 200
        assert_matches(name, await resp.json())
    login = await client.post("/_open/auth", json={"username": "root", "password": "root-pw"})
    assert_matches("AuthResponse", await login.json())

    for method, path, data in (
        ("GET", "/_api/tasks/unknown", None),
        ("GET", "/_api/runs?limit=x", None),
        ("GET", "/_db/nope/_api/tasks", None),
        ("PATCH", "/_api/tasks", None),
        ("POST", "/_api/tasks", "{"),
        ("PUT", "/_api/tasks/timed-one", '{"command":"1"}'),
    ):
        resp = await client.request(method, path, data=data, headers=ROOT)
        assert resp.status >= 400
        error = await resp.json()
        assert_matches("ArangoError", error)
        assert error["code"] == resp.status


async def test_a_task_with_notify_matches_the_schemas(make_client):
    client = await make_client(http_allow="127.0.0.1")
    body = {"command": "return 1;", "cron": "@daily", "notify": "http://127.0.0.1:9/hook"}
    assert_matches("TaskCreate", body)
    created = await client.put("/_api/tasks/hooked", json=body, headers=ROOT)
    assert created.status == 200, await created.text()
    assert_matches("Task", await created.json())
    detailed = await client.get("/_api/tasks/hooked?details=true", headers=ROOT)
    assert_matches("Task", await detailed.json())
    assert_matches("TaskPatch", {"notify": None})

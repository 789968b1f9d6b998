"""The real python-arango client (unmodified) against a real ``arangotasks serve`` process."""

import json
import urllib.request
import uuid

import pytest
from arango import ArangoClient
from arango.exceptions import (
    ServerConnectionError,
    TaskCreateError,
    TaskDeleteError,
    TaskGetError,
    TaskListError,
)

from tests.conftest import ROOT_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.fixture
def arango(server):
    client = ArangoClient(hosts=server.url)
    yield client
    client.close()


def test_python_arango_task_flow(arango):
    """tests/test_task.py of python-arango, as a non-root rw user in a non-system database."""
    db = arango.db("testdb", username="alice", password="alice-pw", verify=True)
    sys_db = arango.db("_system", username="root", password=ROOT_PASSWORD, verify=True)

    task_name = f"test_task_{uuid.uuid4().hex[:8]}"
    new_task = db.create_task(
        name=task_name,
        command='require("@arangodb").print(params);',
        params={"foo": 1, "bar": 2},
        offset=1,
    )
    assert new_task["name"] == task_name
    assert "print(params)" in new_task["command"]
    assert new_task["type"] == "timed"
    assert new_task["database"] == db.name
    assert isinstance(new_task["created"], float)
    assert isinstance(new_task["id"], str)
    assert db.task(new_task["id"]) == new_task

    task_id = f"test_task_id_{uuid.uuid4().hex[:8]}"
    new_task = db.create_task(
        name=task_name,
        command='require("@arangodb").print(params);',
        params={"foo": 1, "bar": 2},
        offset=1,
        period=10,
        task_id=task_id,
    )
    assert new_task["id"] == task_id
    assert new_task["type"] == "periodic"
    assert db.task(task_id) == new_task

    with pytest.raises(TaskCreateError) as err:
        db.create_task(name=task_name, command="return 1;", task_id=task_id)
    assert err.value.error_code == 1851

    for task in sys_db.tasks():
        assert task["type"] in {"periodic", "timed"}
        assert isinstance(task["id"], str)
        assert isinstance(task["name"], str)
        assert isinstance(task["created"], float)
        assert isinstance(task["command"], str)
    assert task_id in {t["id"] for t in sys_db.tasks()}

    with pytest.raises(TaskGetError) as err:
        db.task(uuid.uuid4().hex)
    assert err.value.error_code == 1852

    assert task_id in {t["id"] for t in db.tasks()}
    assert db.delete_task(task_id) is True
    assert task_id not in {t["id"] for t in db.tasks()}
    with pytest.raises(TaskGetError) as err:
        db.task(task_id)
    assert err.value.error_code == 1852
    with pytest.raises(TaskDeleteError) as err:
        db.delete_task(uuid.uuid4().hex)
    assert err.value.error_code == 1852
    assert db.delete_task(task_id, ignore_missing=True) is False


def test_missing_database(arango):
    bad_db = arango.db("nosuchdb", username="root", password=ROOT_PASSWORD)
    with pytest.raises(TaskListError) as err:
        bad_db.tasks()
    assert err.value.error_code in {11, 1228}
    with pytest.raises(ServerConnectionError):
        arango.db("nosuchdb", username="root", password=ROOT_PASSWORD, verify=True)


def test_bad_password(arango):
    with pytest.raises(ServerConnectionError):
        arango.db("_system", username="root", password="wrong", verify=True)
    db = arango.db("_system", username="root", password="wrong")
    with pytest.raises(TaskListError) as err:
        db.tasks()
    assert err.value.http_code == 401
    assert err.value.error_code == 11


def test_jwt_auth(arango):
    db = arango.db("testdb", username="alice", password="alice-pw", auth_method="jwt", verify=True)
    task = db.create_task(name="jwt", command="return 1;", period=60, offset=30)
    assert db.task(task["id"]) == task
    assert db.delete_task(task["id"]) is True


def test_version_keeps_tasks_on(arango):
    sys_db = arango.db("_system", username="root", password=ROOT_PASSWORD)
    major = int(sys_db.version().split(".")[0])
    assert major < 4


def test_read_only_user(arango):
    db = arango.db("testdb", username="bob", password="bob-pw", verify=True)
    assert db.tasks() == []
    with pytest.raises(TaskCreateError) as err:
        db.create_task(name="x", command="return 1;")
    assert (err.value.http_code, err.value.error_code) == (403, 11)


def test_raw_http_bodies(server):
    """Bodies the driver hides: exact text of the create and delete responses."""
    import base64

    auth = base64.b64encode(f"root:{ROOT_PASSWORD}".encode()).decode()

    def call(method, path, body=None):
        req = urllib.request.Request(
            server.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {auth}"},
        )
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, resp.headers["Content-Type"], resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()

    status, ctype, text = call(
        "PUT", "/_db/testdb/_api/tasks/raw1", {"command": "x", "period": 1.5}
    )
    assert (status, ctype) == (200, "application/json; charset=utf-8")
    assert text.startswith('{"id":"raw1","name":"user-defined task","created":')
    assert text.endswith(
        ',"type":"periodic","period":1.5,"offset":0,'
        '"command":"(function (params) { x } )(params);","database":"testdb"}'
    )
    assert call("DELETE", "/_api/tasks/raw1") == (
        200,
        "application/json; charset=utf-8",
        '{"error":false,"code":200}',
    )
    status, _, text = call("PATCH", "/_api/tasks")
    assert (status, json.loads(text)["errorNum"]) == (405, 405)

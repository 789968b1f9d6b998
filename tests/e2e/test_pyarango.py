"""The real pyArango client (unmodified, pinned in the dev extra) against a real server.

``test_pyarango_own_test_tasks`` runs pyArango's own ``pyArangoTests.test_tasks`` (its setUp,
test and tearDown, from the installed ``pyArango/tests/tests.py``) through unittest; the other
test is a copy of the same body, so that a failure shows here which step broke.
"""

import unittest

import pytest
from pyArango.admin import Admin
from pyArango.connection import Connection
from pyArango.theExceptions import CreationError

from tests.conftest import ROOT_PASSWORD, USERS_TOML
from tests.e2e.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("pyarango")
    users = base / "users.toml"
    # pyArango's tests work in a database named test_db_2 (databases come from the users file).
    users.write_text(
        USERS_TOML.replace('databases = ["testdb", "other"]', 'databases = ["test_db_2"]')
    )
    process = ServerProcess(base / "data", users)
    process.start()
    yield process
    process.stop()


def test_pyarango_own_test_tasks(server, monkeypatch):
    from pyArango.tests.tests import pyArangoTests

    monkeypatch.setenv("ARANGODB_URL", server.url)
    monkeypatch.setenv("ARANGODB_ROOT_USERNAME", "root")
    monkeypatch.setenv("ARANGODB_ROOT_PASSWORD", ROOT_PASSWORD)
    result = unittest.TestResult()
    pyArangoTests("test_tasks").run(result)
    problems = [text for _, text in result.errors + result.failures]
    assert result.testsRun == 1 and problems == [], "\n".join(problems)


class TestTasksCopy(unittest.TestCase):
    """pyArango (github.com/ArangoDB-Community/pyArango, Apache-2.0), pyArango/tests/tests.py:
    ``setUp``, ``_reset``, ``test_tasks`` and ``tearDown`` as written there; only the URL and
    the root password come from the test server."""

    __test__ = False  # run by test_pyarango_test_tasks_copy, against the module's server
    url = ""

    def setUp(self):
        self.conn = Connection(arangoURL=self.url, username="root", password=ROOT_PASSWORD)
        try:
            self.conn.createDatabase(name="test_db_2")
        except CreationError:
            pass

        self.db = self.conn["test_db_2"]
        self.admin = Admin(self.conn)
        self.is_cluster = self.admin.is_cluster()
        self.server_version = self.conn.getVersion()
        self._reset()

    def _reset(self):
        self.db.reload()
        self.db.tasks.drop()

        for colName in self.db.collections:
            if not self.db[colName].isSystem:
                self.db[colName].delete()

        for graph in self.db.graphs.values():
            graph.delete()

        for user in self.conn.users.fetchAllUsers():
            if user["username"].find("pyArangoTest") > -1:
                user.delete()
        self.conn.disconnectSession()

    def tearDown(self):
        self._reset()

    def test_tasks(self):
        db_tasks = self.db.tasks
        self.assertListEqual(db_tasks(), [])
        task = db_tasks.create("sample-task", 'console.log("sample-task", new Date());', period=10)
        task_id = task["id"]
        fetched_task = db_tasks.fetch(task_id)
        fetched_task["offset"] = int(fetched_task["offset"])
        self.assertDictEqual(task, fetched_task)
        tasks = db_tasks()
        tasks[0]["offset"] = int(tasks[0]["offset"])
        self.assertListEqual(tasks, [task])
        db_tasks.delete(task_id)
        self.assertListEqual(db_tasks(), [])


def test_pyarango_test_tasks_copy(server):
    TestTasksCopy.url = server.url
    case = TestTasksCopy("test_tasks")
    case.setUp()
    try:
        case.test_tasks()
    finally:
        case.tearDown()
    assert case.is_cluster is False
    assert case.server_version["server"] == "arango"


def test_pyarango_connects_as_a_user_and_with_jwt(server):
    conn = Connection(arangoURL=server.url, username="alice", password="alice-pw")
    assert "test_db_2" in conn.databases and "_system" in conn.databases
    users = conn.users.fetchAllUsers(rawResults=True)
    assert users == [{"user": "alice", "active": True, "extra": {}}]
    jwt_conn = Connection(
        arangoURL=server.url, username="root", password=ROOT_PASSWORD, use_jwt_authentication=True
    )
    assert "test_db_2" in jwt_conn.databases
    assert jwt_conn["test_db_2"].tasks() == []

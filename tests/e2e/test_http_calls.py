"""Outbound HTTP from a real ``arangotasks serve`` process: a task calls a loopback remote allowed
by CIDR, and a task calling the server's own port is refused."""

import pytest

from tests.e2e.http import Http
from tests.unit.http_remote import remote_in_a_thread

pytestmark = pytest.mark.e2e


def test_a_real_server_calls_out_and_refuses_its_own_port(make_server):
    with remote_in_a_thread() as port:
        server = make_server(ARANGOTASKS_HTTP_ALLOW="127.0.0.0/8")
        http = Http(server.url)
        try:
            request = "require('@arangodb/request')"
            out = http.ok(
                "POST",
                "/_api/tasks",
                {"command": f"return {request}.get('http://127.0.0.1:{port}/echo').json.method"},
            )
            own = http.ok(
                "POST",
                "/_api/tasks",
                {"command": f"return {request}.get('{server.url}/_api/version').status"},
            )
            called = http.wait_runs(f"taskIds={out['id']}", 1)["results"][0]
            refused = http.wait_runs(f"taskIds={own['id']}", 1)["results"][0]
        finally:
            http.close()
    assert (called["status"], called["result"]) == ("succeeded", "GET"), called
    assert called["requests"][0]["status"] == 200
    assert refused["status"] == "failed"
    assert "this server's own address" in refused["error"]["message"]
    assert refused["requests"][0]["status"] is None

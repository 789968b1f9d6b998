"""A real server with authentication off warns at start and refuses foreign-origin writes."""

import json
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def test_no_auth_warns_and_refuses_a_foreign_text_plain_post(make_server):
    server = make_server(ARANGOTASKS_NO_AUTH="1")
    assert "WARNING arangotasks: authentication is OFF" in server.output()
    request = urllib.request.Request(
        server.url + "/_api/tasks",
        data=json.dumps({"command": "return 1;", "offset": 100}).encode(),
        headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 403
    assert json.loads(info.value.read())["errorNum"] == 11
    with urllib.request.urlopen(server.url + "/_api/tasks", timeout=10) as resp:
        assert json.loads(resp.read()) == []


def test_an_empty_root_password_is_warned_about(make_server):
    server = make_server(ARANGOTASKS_ROOT_PASSWORD="")
    assert "WARNING arangotasks: the superuser 'root' has an empty password" in server.output()

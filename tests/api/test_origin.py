"""With authentication off, writes from other web origins are refused (issue 11)."""

import json

from arangotasks.auth import start_warnings
from arangotasks.config import Settings, load_access

COMMAND = json.dumps({"command": "return 1;", "offset": 100})


async def tasks_of(client) -> list:
    return await (await client.get("/_api/tasks")).json()


async def test_a_text_plain_post_from_a_foreign_origin_creates_nothing(make_client):
    client = await make_client(no_auth=True)
    headers = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    resp = await client.post("/_api/tasks", data=COMMAND, headers=headers)
    assert resp.status == 403
    body = await resp.json()
    assert (body["error"], body["errorNum"], body["code"]) == (True, 11, 403)
    assert "origin 'http://evil.example'" in body["errorMessage"]
    assert (await client.put("/_api/tasks/x", data=COMMAND, headers=headers)).status == 403
    assert (await client.delete("/_api/tasks/x", headers=headers)).status == 403
    assert await tasks_of(client) == []


async def test_dns_rebinding_hosts_are_refused_and_own_hosts_accepted(make_client):
    client = await make_client(no_auth=True, allowed_hosts="tasks.internal, other")
    rebound = {"Host": "evil.example:8529", "Origin": "http://evil.example:8529"}
    resp = await client.post("/_api/tasks", data=COMMAND, headers=rebound)
    assert resp.status == 403
    assert "host 'evil.example:8529'" in (await resp.json())["errorMessage"]
    assert (await client.post("/_api/tasks", data="null", headers={"Origin": "null"})).status == 403
    # Reads are not refused.
    assert (await client.get("/_api/tasks", headers=rebound)).status == 200
    # curl and drivers (no Origin), the server's own origin, and configured names may write.
    assert (await client.post("/_api/tasks", data=COMMAND)).status == 200
    own = f"http://{client.server.host}:{client.server.port}"
    assert (await client.post("/_api/tasks", data=COMMAND, headers={"Origin": own})).status == 200
    named = {"Host": "tasks.internal:8529", "Origin": "http://tasks.internal:8529"}
    assert (await client.post("/_api/tasks", data=COMMAND, headers=named)).status == 200
    local = {"Host": "localhost:8529"}
    assert (await client.post("/_api/tasks", data=COMMAND, headers=local)).status == 200
    ipv6 = {"Host": "[::1]:8529", "Origin": "http://[::1]:8529"}
    assert (await client.post("/_api/tasks", data=COMMAND, headers=ipv6)).status == 200
    assert len(await tasks_of(client)) == 5


async def test_with_authentication_on_origin_is_left_to_the_credentials(client):
    from tests.conftest import ROOT

    headers = {**ROOT, "Origin": "http://evil.example"}
    assert (await client.post("/_api/tasks", data=COMMAND, headers=headers)).status == 200


def test_start_warnings(tmp_path):
    def warnings(**values):
        settings = Settings(data_dir=tmp_path, jwt_secret="s" * 40, **values)
        return start_warnings(settings, load_access(settings))

    assert warnings(root_password="x") == []
    [empty] = warnings(root_password="")
    assert "'root' has an empty password" in empty
    [off] = warnings(no_auth=True)
    assert off.startswith("authentication is OFF")

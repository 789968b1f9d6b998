"""A task's own ``notify`` URL: validation, the outbound HTTP allowlist at create and PATCH time,
the task object (no key when unset), and signed deliveries to a local aiohttp server."""

import asyncio
import hashlib
import hmac
import json

import pytest

from tests.api.helpers import create
from tests.api.test_metrics import scrape, value
from tests.api.test_notify import SECRET, receiver, until  # noqa: F401  (fixture)
from tests.conftest import ROOT

ARANGODB_KEYS = ["id", "name", "created", "type", "period", "offset", "command", "database"]
LOOPBACK = "127.0.0.1"  # an IP rule: lets tasks reach loopback servers (see allowlist.py)
HOOK = "http://127.0.0.1:9/hook"  # never contacted by these tests unless a run fails


async def call(client, method, path, body=None, headers=ROOT):
    data = None if body is None else json.dumps(body)
    resp = await client.request(method, path, data=data, headers=headers)
    return resp.status, await resp.json()


def assert_bad(status, body, message):
    assert (status, body["errorNum"], body["code"]) == (400, 10, 400), body
    assert body["errorMessage"] == message


async def test_a_task_without_notify_has_no_notify_key(make_client):
    client = await make_client(http_allow=LOOPBACK)
    body = await create(client, period=60, offset=3600)
    assert list(body) == ARANGODB_KEYS
    status, again = await call(client, "GET", f"/_api/tasks/{body['id']}")
    assert (status, again) == (200, body)
    status, listed = await call(client, "GET", "/_api/tasks")
    assert listed == [body]
    status, details = await call(client, "GET", f"/_api/tasks/{body['id']}?details=true")
    assert details["notify"] is None  # details show every extension field


async def test_notify_round_trip_create_put_patch(make_client):
    client = await make_client(http_allow=LOOPBACK)
    body = await create(client, period=60, offset=3600, notify=HOOK)
    assert list(body) == [*ARANGODB_KEYS, "notify"] and body["notify"] == HOOK
    assert (await call(client, "GET", f"/_api/tasks/{body['id']}"))[1] == body
    plain = await create(client, period=60, offset=3600)
    details = [
        list((await call(client, "GET", f"/_api/tasks/{t['id']}?details=true"))[1])
        for t in (body, plain)
    ]
    assert details[0] == details[1]  # the same keys in the same order, set or not
    cron = await call(client, "PUT", "/_api/tasks/c", {"command": "1", "cron": "@daily"})
    assert "notify" not in cron[1]
    status, hooked = await call(client, "PATCH", "/_api/tasks/c", {"notify": HOOK + "?c=1"})
    assert status == 200, hooked
    assert list(hooked)[-3:] == ["cron", "timezone", "notify"] and hooked["notify"].endswith("c=1")
    status, renamed = await call(client, "PATCH", "/_api/tasks/c", {"name": "n"})
    assert (renamed["name"], renamed["notify"]) == ("n", HOOK + "?c=1")
    status, cleared = await call(client, "PATCH", "/_api/tasks/c", {"notify": None})
    assert status == 200 and "notify" not in cleared
    assert (await call(client, "GET", "/_api/tasks/c"))[1] == cleared


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        (5, "notify: expected an http or https URL such as https://hooks.example.com/arangotasks"),
        ("", "notify: expected an http or https URL such as https://hooks.example.com/arangotasks"),
        ("ftp://127.0.0.1/x", "notify: only http and https URLs are allowed (scheme ftp)"),
        ("127.0.0.1/hook", "notify: only http and https URLs are allowed (scheme (none))"),
        ("http:///hook", "notify: the URL has no host; expected an http or https URL such as "
         "https://hooks.example.com/arangotasks"),
        ("http://127.0.0.1:99999/", "notify: not a valid URL; expected an http or https URL such "
         "as https://hooks.example.com/arangotasks"),
        ("http://127.0.0.1/a b", "notify: the URL must not contain spaces or control characters"),
        ("http://u:p@127.0.0.1/", "notify: credentials in the URL are not allowed "
         "(use ARANGOTASKS_WEBHOOK_SECRET's signature)"),
        ("http://127.0.0.1/" + "x" * 2048, "notify: the URL is longer than 2048 characters"),
    ],
)  # fmt: skip
async def test_bad_notify_values_are_400_naming_the_field(make_client, notify, message):
    client = await make_client(http_allow=LOOPBACK)
    status, body = await call(client, "POST", "/_api/tasks", {"command": "1", "notify": notify})
    assert_bad(status, body, message)
    status, body = await call(client, "PUT", "/_api/tasks/t", {"command": "1", "notify": notify})
    assert_bad(status, body, message)
    await create(client, id="ok", period=60, offset=3600)
    status, body = await call(client, "PATCH", "/_api/tasks/ok", {"notify": notify})
    assert_bad(status, body, message)
    assert (await call(client, "GET", "/_api/tasks"))[1][0]["id"] == "ok"  # nothing else made


async def test_the_allowlist_refuses_a_notify_url_at_create_and_patch(make_client):
    client = await make_client()  # no ARANGOTASKS_HTTP_ALLOW: outbound HTTP is off
    status, body = await call(client, "POST", "/_api/tasks", {"command": "1", "notify": HOOK})
    assert_bad(
        status, body, "notify: 127.0.0.1 refused: outbound HTTP is off (ARANGOTASKS_HTTP_ALLOW "
        "is empty)",
    )  # fmt: skip
    assert (await call(client, "GET", "/_api/tasks"))[1] == []

    client = await make_client(http_allow="hooks.example.com,localhost")
    await create(client, id="t", period=60, offset=3600)
    status, body = await call(client, "PATCH", "/_api/tasks/t", {"notify": HOOK})
    assert_bad(status, body, "notify: 127.0.0.1 refused: not allowed by ARANGOTASKS_HTTP_ALLOW")
    status, body = await call(client, "PATCH", "/_api/tasks/t", {"notify": "http://localhost/h"})
    assert status == 400 and body["errorMessage"].startswith(
        "notify: localhost refused: 127.0.0.1 is not a public address"
    )
    assert "notify" not in (await call(client, "GET", "/_api/tasks/t"))[1]


async def test_a_failing_task_notifies_its_own_url_signed(make_client, receiver):  # noqa: F811
    own, server_wide = await receiver(), await receiver()
    client = await make_client(
        http_allow=LOOPBACK, webhook_url=server_wide.url, webhook_secret=SECRET
    )
    task = await create(client, command="throw new Error('boom');", offset=3600, notify=own.url)
    await call(client, "POST", f"/_api/tasks/{task['id']}/run")
    await until(lambda: own.received and server_wide.received)
    headers, body = own.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Arangotasks-Signature"] == expected
    assert headers["X-Arangotasks-Event"] == "run.failed"
    assert headers["Host"] == own.url.split("/")[2]  # the URL's authority, not only the address
    assert body == server_wide.received[0][1]  # the same notification to both
    payload = json.loads(body)
    assert payload["run"]["taskId"] == task["id"] and payload["run"]["status"] == "failed"

    # Fixed: the next success is a recovery, posted to the task's URL too.
    status, _ = await call(client, "PATCH", f"/_api/tasks/{task['id']}", {"command": "return 1;"})
    assert status == 200
    await call(client, "POST", f"/_api/tasks/{task['id']}/run")
    await until(lambda: own.events() == ["run.failed", "task.recovered"])
    await until(lambda: server_wide.events() == ["run.failed", "task.recovered"])
    assert value(await scrape(client), "arangotasks_webhooks_sent_total") == 4


async def test_failed_deliveries_to_a_task_url_are_retried_and_counted(
    make_client,
    receiver,  # noqa: F811
):
    own = await receiver(statuses=[500] * 10)
    client = await make_client(http_allow=LOOPBACK, webhook_attempts=3, webhook_backoff=0.01)
    task = await create(client, command="throw 1;", offset=3600, notify=own.url)
    await call(client, "POST", f"/_api/tasks/{task['id']}/run")
    await until(lambda: len(own.received) == 3)
    async with asyncio.timeout(20):
        while value(samples := await scrape(client), "arangotasks_webhook_failures_total") < 1:
            await asyncio.sleep(0.05)
    assert len(own.received) == 3
    assert value(samples, "arangotasks_webhook_retries_total") == 2
    assert value(samples, "arangotasks_webhooks_sent_total") == 0
    assert "X-Arangotasks-Signature" not in own.received[0][0]  # no secret: no signature

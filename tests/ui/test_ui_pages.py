"""The dashboard in-process: sessions, CSRF, every page and action, per-user visibility."""

import asyncio
import re

import pytest

from tests.conftest import ALICE, ROOT


async def create(client, headers, body):
    resp = await client.post("/_api/tasks", json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def log_in(client, user, password):
    resp = await client.post(
        "/ui/login",
        data={"username": user, "password": password, "next": "/ui/"},
        headers={"Origin": f"http://{client.host}:{client.port}"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return resp


def origin(client):
    return {"Origin": f"http://{client.host}:{client.port}"}


async def wait_status(client, uid: int, status: str) -> None:
    async with asyncio.timeout(20):
        while (await (await client.get(f"/_api/runs/{uid}", headers=ROOT)).json())[
            "status"
        ] != status:
            await asyncio.sleep(0.05)


async def csrf_of(client, path="/ui/"):
    page = await (await client.get(path)).text()
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


@pytest.fixture
async def client(make_client):
    return await make_client()


async def test_pages_need_a_session(client):
    resp = await client.get("/ui/", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/ui/login")
    assert (await client.get("/ui/login")).status == 200
    resp = await client.post(
        "/ui/login", data={"username": "root", "password": "wrong"}, headers=origin(client)
    )
    assert resp.status == 401 and "Wrong user name or password" in await resp.text()


async def test_login_cookie_is_strict_and_http_only(client):
    resp = await log_in(client, "root", "root-pw")
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie


async def test_cross_site_login_and_forms_are_refused(client):
    resp = await client.post(
        "/ui/login",
        data={"username": "root", "password": "root-pw"},
        headers={"Origin": "http://evil.example"},
    )
    assert resp.status == 403
    task_id = await create(client, ROOT, {"name": "t", "command": "return 1", "offset": 3600})
    await log_in(client, "root", "root-pw")
    token = await csrf_of(client)
    for headers, data in (
        ({"Origin": "http://evil.example"}, {"csrf": token}),  # foreign origin
        (origin(client), {"csrf": "forged"}),  # wrong token
        (origin(client), {}),  # no token
    ):
        resp = await client.post(f"/ui/tasks/{task_id}/delete", data=data, headers=headers)
        assert resp.status == 403
    assert (await client.get(f"/_api/tasks/{task_id}", headers=ROOT)).status == 200


async def test_list_task_run_and_delete(client):
    task_id = await create(
        client,
        ROOT,
        {
            "name": "greeter",
            "command": "print('hello', params.who); return 42",
            "params": {"who": "you"},
            "offset": 3600,
        },
    )
    await log_in(client, "root", "root-pw")
    listing = await (await client.get("/ui/")).text()
    assert "greeter" in listing and "once, 1 h after creation" in listing
    assert "greeter" in await (await client.get("/ui/?q=GREET")).text()
    assert "No tasks" in await (await client.get("/ui/?q=nothing-like-it")).text()
    page = await (await client.get(f"/ui/tasks/{task_id}")).text()
    assert '<span class="js-call">print</span>' in page and "No finished runs yet" in page
    token = await csrf_of(client, f"/ui/tasks/{task_id}")
    resp = await client.post(
        f"/ui/tasks/{task_id}/run",
        data={"csrf": token},
        headers=origin(client),
        allow_redirects=False,
    )
    assert resp.status == 303
    uid = int(resp.headers["Location"].rsplit("=", 1)[1])
    await wait_status(client, uid, "succeeded")
    run_page = await (await client.get(f"/ui/runs/{uid}")).text()
    assert "hello you" in run_page and "42" in run_page
    task_page = await (await client.get(f"/ui/tasks/{task_id}")).text()
    assert "<svg" in task_page and f"/ui/runs/{uid}" in task_page
    resp = await client.post(
        f"/ui/tasks/{task_id}/delete",
        data={"csrf": token},
        headers=origin(client),
        allow_redirects=False,
    )
    assert resp.status == 303
    assert (await client.get(f"/_api/tasks/{task_id}", headers=ROOT)).status == 404
    assert (await client.get(f"/ui/tasks/{task_id}")).status == 404


async def test_failures_page_and_error_stack(client):
    task_id = await create(
        client, ROOT, {"name": "breaks", "command": "throw new Error('boom <b>')", "offset": 3600}
    )
    run = await (await client.post(f"/_api/tasks/{task_id}/run", headers=ROOT)).json()
    await wait_status(client, run["uid"], "failed")
    await log_in(client, "root", "root-pw")
    failures = await (await client.get("/ui/failures")).text()
    assert "boom &lt;b&gt;" in failures and "<b>" not in failures.split("boom")[1][:10]
    run_page = await (await client.get(f"/ui/runs/{run['uid']}")).text()
    assert "Stack" in run_page


async def test_a_user_sees_only_their_own_tasks(client):
    mine = await create(client, ALICE, {"name": "alice-task", "command": "1", "offset": 3600})
    theirs = await create(client, ROOT, {"name": "root-task", "command": "1", "offset": 3600})
    await log_in(client, "alice", "alice-pw")
    listing = await (await client.get("/ui/")).text()
    assert "alice-task" in listing and "root-task" not in listing
    assert (await client.get(f"/ui/tasks/{theirs}")).status == 404
    assert (await client.get(f"/ui/tasks/{mine}")).status == 200


async def test_logout(client):
    await log_in(client, "root", "root-pw")
    token = await csrf_of(client)
    resp = await client.post(
        "/ui/logout", data={"csrf": token}, headers=origin(client), allow_redirects=False
    )
    assert resp.status == 303
    client.session.cookie_jar.clear()
    assert (await client.get("/ui/", allow_redirects=False)).status == 303


async def test_dashboard_logins_share_the_failed_login_throttle(make_client):
    client = await make_client(login_burst=2, login_rate=0.01)
    for _ in range(2):
        resp = await client.post(
            "/ui/login", data={"username": "root", "password": "wrong"}, headers=origin(client)
        )
        assert resp.status == 401
    resp = await client.post(
        "/ui/login",
        data={"username": "root", "password": "root-pw"},
        headers=origin(client),
        allow_redirects=False,
    )
    assert resp.status == 429
    assert "too many failed logins" in await resp.text()
    # The API's Basic logins from the same address wait too.
    assert (await client.get("/_api/version", headers=ROOT)).status == 429


async def test_pause_and_resume(client):
    task_id = await create(
        client,
        ROOT,
        {"name": "cronjob", "command": "1", "cron": "0 3 * * *", "timezone": "Europe/Berlin"},
    )
    await log_in(client, "root", "root-pw")
    page = await (await client.get(f"/ui/tasks/{task_id}")).text()
    assert "cron 0 3 * * * (Europe/Berlin)" in page and ">Pause<" in page
    token = await csrf_of(client, f"/ui/tasks/{task_id}")
    resp = await client.post(
        f"/ui/tasks/{task_id}/pause",
        data={"csrf": token},
        headers=origin(client),
        allow_redirects=False,
    )
    assert resp.status == 303
    details = await (await client.get(f"/_api/tasks/{task_id}?details=true", headers=ROOT)).json()
    assert details["enabled"] is False
    page = await (await client.get(f"/ui/tasks/{task_id}")).text()
    assert "(paused)" in page and ">Resume<" in page
    resp = await client.post(
        f"/ui/tasks/{task_id}/resume",
        data={"csrf": token},
        headers=origin(client),
        allow_redirects=False,
    )
    assert resp.status == 303
    details = await (await client.get(f"/_api/tasks/{task_id}?details=true", headers=ROOT)).json()
    assert details["enabled"] is True


async def test_the_task_page_shows_a_notify_url(make_client):
    client = await make_client(http_allow="127.0.0.1")
    hook = "http://127.0.0.1:9/hook?a=1&b=<2>"
    hooked = await create(client, ROOT, {"command": "return 1;", "offset": 3600, "notify": hook})
    plain = await create(client, ROOT, {"command": "return 1;", "offset": 3600})
    await log_in(client, "root", "root-pw")
    page = await (await client.get(f"/ui/tasks/{hooked}")).text()
    assert "<dt>Notify</dt>" in page and "http://127.0.0.1:9/hook?a=1&amp;b=&lt;2&gt;" in page
    assert "<dt>Notify</dt>" not in await (await client.get(f"/ui/tasks/{plain}")).text()

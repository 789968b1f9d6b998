"""The compile check through the API: it never runs the command, shares its workers fairly,
and a stuck compile worker is 503, never 400 for a valid command."""

import asyncio
import json
import os
import signal

from arangotasks.keys import REGISTRY
from tests.api.helpers import create
from tests.conftest import ALICE, ROOT

ATTACK = "}); for (;;) {} (function () {"


async def post(client, body, headers=ROOT):
    return await client.post("/_api/tasks", data=json.dumps(body), headers=headers)


async def test_an_escaping_body_is_a_syntax_error_with_its_position(client):
    resp = await post(client, {"command": ATTACK}, ALICE)
    assert resp.status == 400
    body = await resp.json()
    assert body["errorNum"] == 10
    assert body["errorMessage"] == (
        "cannot compile command: SyntaxError: unexpected token in expression: ')'"
        " (line 1, column 2)"
    )


async def test_creates_go_on_during_concurrent_attack_creates(client):
    attacks = [
        asyncio.ensure_future(post(client, {"command": f"{ATTACK} // {i}"}, ALICE))
        for i in range(6)
    ]
    task = await create(client, command="return 'mine';")
    assert task["command"].startswith("(function (params) { return 'mine';")
    for resp in await asyncio.gather(*attacks):
        assert resp.status == 400
        assert (await resp.json())["errorMessage"].startswith("cannot compile command: Syntax")


async def test_a_stuck_compile_worker_is_503_not_cannot_compile(client):
    compiler = client.app[REGISTRY].sandbox._compiler
    assert compiler is not None
    stopped = compiler.pids
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        resp = await post(client, {"command": "return 'valid and new';"})
        assert resp.status == 503, await resp.text()
        body = await resp.json()
        assert body == {
            "error": True,
            "errorNum": 503,
            "errorMessage": "the compile check is unavailable, try again later",
            "code": 503,
        }
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    # The stuck worker was replaced: the same command compiles now.
    await create(client, command="return 'valid and new';")

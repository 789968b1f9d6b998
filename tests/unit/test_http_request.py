"""``require('@arangodb/request')`` and ``fetch`` against a real aiohttp server on loopback: every
option and response field, redirects, timeouts, size caps and errors, and the run's
``requests`` record."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from arangotasks.models import RunOutcome
from arangotasks.sandbox import Limits, QuickJSSandbox
from arangotasks.sandbox.host import HostCalls
from tests.unit.http_remote import remote_app, serve, use_outbound

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote() -> AsyncIterator[int]:
    async with serve(remote_app()) as port:
        yield port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(remote: int) -> AsyncIterator[QuickJSSandbox]:
    calls = HostCalls()
    outbound = use_outbound(calls, http_allow=f"127.0.0.1:{remote}", http_max_response_mb=1)
    limits = Limits(timeout=5.0, memory_bytes=64 << 20)
    sandbox = QuickJSSandbox(workers=2, limits=limits, compile_workers=0, host=calls)
    await sandbox.start()
    yield sandbox
    await sandbox.close()
    await outbound.close()


async def run(sandbox: QuickJSSandbox, remote: int, body: str, **kw: Any) -> RunOutcome:
    command = f"var request = require('@arangodb/request'); var R = 'http://127.0.0.1:{remote}';"
    return await sandbox.run(command + body, None, **kw)


def value(outcome: RunOutcome) -> Any:
    assert outcome.ok, outcome.error
    assert outcome.result_json is not None
    return json.loads(outcome.result_json)


async def test_get_gives_every_response_field(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        """var res = request.get(R + '/json');
        return [res.status, res.statusCode, res.message, res.headers['content-type'],
                res.body, res.json];""",
    )
    assert value(outcome) == [
        200,
        200,
        "OK",
        "application/json; charset=utf-8",
        '{"x": 1, "s": "\\u00fc"}',
        {"x": 1, "s": "ü"},
    ]
    assert outcome.requests == [
        {
            "method": "GET",
            "url": f"http://127.0.0.1:{remote}/json",
            "status": 200,
            "durationMs": outcome.requests[0]["durationMs"],
            "error": None,
        }
    ]


async def test_headers_are_lower_case_and_json_is_undefined_for_other_bodies(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        """var res = request.get(R + '/headers');
        return [res.headers['x-multi'], res.headers['x-case'], res.json === undefined,
                res.body];""",
    )
    assert value(outcome) == ["a, b", "Value", True, "not json {"]


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
async def test_method_helpers(sandbox, remote, method):
    outcome = await run(sandbox, remote, f"return request.{method}(R + '/echo').json.method")
    assert value(outcome) == method.upper()


async def test_head_has_no_body(sandbox, remote):
    outcome = await run(
        sandbox, remote, "var r = request.head(R + '/echo'); return [r.status, r.body]"
    )
    assert value(outcome) == [200, ""]


async def test_request_options_object_and_string(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        """return [request({method: 'post', url: R + '/echo', body: 'hi'}).json,
                   request(R + '/echo').json.method];""",
    )
    echoed, method = value(outcome)
    assert echoed["method"] == "POST"
    assert echoed["body"] == "hi"
    assert echoed["headers"]["content-type"] == "text/plain; charset=utf-8"
    assert method == "GET"


async def test_json_option_encodes_the_body_and_parses_the_answer(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        "return request.post(R + '/echo', {json: true, body: {a: [1, 'x']}}).json",
    )
    echoed = value(outcome)
    assert json.loads(echoed["body"]) == {"a": [1, "x"]}
    assert echoed["headers"]["content-type"] == "application/json"


async def test_json_false_skips_parsing(sandbox, remote):
    outcome = await run(sandbox, remote, "return 'json' in request.get(R + '/json', {json: false})")
    assert value(outcome) is False


async def test_qs_is_encoded_like_arangodb(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        """return [request.get(R + '/echo?old=1', {qs: {a: 'x y', b: [1, 2], c: {d: "it's!"},
                                                        n: null, u: undefined}}).json.query,
                   request.get(R + '/echo', {qs: '?raw=1&x'}).json.query];""",
    )
    assert value(outcome) == [
        "a=x%20y&b%5B0%5D=1&b%5B1%5D=2&c%5Bd%5D=it%27s%21&n=",
        "raw=1&x",
    ]


async def test_headers_option_and_auth(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        """var h = function (o) { return request.get(R + '/echo', o).json.headers; };
        return [h({headers: {'X-Token': 'abc'}})['x-token'],
                h({auth: {username: 'u', password: 'p'}}).authorization,
                h({auth: {bearer: 'tok'}}).authorization,
                request.get('http://me:pw@127.0.0.1:' + R.split(':')[2] + '/echo')
                  .json.headers.authorization];""",
    )
    assert value(outcome) == ["abc", "Basic dTpw", "Bearer tok", "Basic bWU6cHc="]


async def test_an_error_status_is_a_response_not_an_exception(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        """var a = request.get(R + '/status/404');
        var b = request.get(R + '/status/500', {returnBodyOnError: false});
        return [a.status, a.message, a.body, b.status, b.body];""",
    )
    assert value(outcome) == [404, "Not Found", "status 404", 500, ""]


async def test_redirects_are_followed(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        """var r = request.post(R + '/redirect/3?code=303', {body: 'x'});
        return [r.status, r.json.method, r.json.path];""",
    )
    assert value(outcome) == [200, "GET", "/echo"]
    assert [entry["status"] for entry in outcome.requests] == [303, 303, 303, 200]


async def test_307_keeps_method_and_body(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        "var j = request.post(R + '/redirect/1?code=307', {body: 'keep'}).json;"
        " return [j.method, j.body];",
    )
    assert value(outcome) == ["POST", "keep"]


async def test_follow_redirect_false_returns_the_redirect(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        "var r = request.get(R + '/redirect/1', {followRedirect: false});"
        " return [r.status, r.headers.location];",
    )
    assert value(outcome) == [302, "/echo"]


async def test_max_redirects_limits_the_hops(sandbox, remote):
    outcome = await run(sandbox, remote, "request.get(R + '/redirect/4', {maxRedirects: 2})")
    assert outcome.error is not None
    assert (
        outcome.error["message"]
        == "request to 127.0.0.1 failed: too many redirects (maxRedirects 2)"
    )


async def test_the_request_timeout_throws_a_catchable_error(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        "try { request.get(R + '/slow', {timeout: 0.2}); } catch (e) { return e.message; }",
    )
    assert value(outcome) == "request to 127.0.0.1 failed: timed out after 0.2 s"
    assert outcome.requests[0]["error"] == "request to 127.0.0.1 failed: timed out after 0.2 s"
    assert outcome.requests[0]["status"] is None


async def test_a_request_is_bounded_by_the_runs_remaining_time(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        "try { request.get(R + '/slow'); } catch (e) {} return 'caught';",
        limits=Limits(timeout=1.0, memory_bytes=64 << 20),
    )
    assert outcome.error is not None
    assert outcome.error["type"] == "timeout"
    assert "time limit of 1 s passed" in outcome.error["message"]


async def test_a_response_over_the_size_cap_fails_the_run(sandbox, remote):
    outcome = await run(
        sandbox,
        remote,
        "try { request.get(R + '/big?bytes=' + (2 << 20)); } catch (e) {} return 'caught';",
    )
    assert outcome.error is not None
    assert outcome.error["type"] == "http_limit"
    assert "ARANGOTASKS_HTTP_MAX_RESPONSE_MB" in outcome.error["message"]
    # Below the cap is fine.
    small = await run(sandbox, remote, "return request.get(R + '/big?bytes=1000').body.length")
    assert value(small) == 1000


async def test_a_connection_failure_names_host_and_reason(sandbox):
    outcome = await sandbox.run("require('@arangodb/request').get('http://127.0.0.1:1/')", None)
    assert outcome.error is not None
    assert outcome.error["message"].startswith("request to 127.0.0.1 refused: not allowed by")


async def test_fetch(sandbox, remote):
    outcome = await sandbox.run(
        f"""return (async () => {{
          const r = await fetch('http://127.0.0.1:{remote}/echo', {{method: 'PUT', body: 'b',
                                 headers: {{'X-A': '1'}}}});
          const j = await r.json();
          const e = await fetch('http://127.0.0.1:{remote}/status/418');
          return [r.status, r.ok, r.headers.get('Content-Type'), j.method, j.body,
                  j.headers['x-a'], e.status, e.ok, await e.text(), e.statusText];
        }})();""",
        None,
    )
    assert value(outcome) == [
        200,
        True,
        "application/json; charset=utf-8",
        "PUT",
        "b",
        "1",
        418,
        False,
        "status 418",
        "I'm a Teapot",
    ]


async def test_fetch_rejects_on_a_refused_request(sandbox):
    outcome = await sandbox.run(
        "return fetch('http://127.0.0.1:1/').then(() => 'no', e => e.message)", None
    )
    assert value(outcome).startswith("request to 127.0.0.1 refused")


async def test_too_many_requests_fail_the_run(remote):
    calls = HostCalls()
    outbound = use_outbound(calls, http_allow=f"127.0.0.1:{remote}", http_max_requests=3)
    sandbox = QuickJSSandbox(workers=1, compile_workers=0, host=calls)
    await sandbox.start()
    try:
        outcome = await run(
            sandbox,
            remote,
            "for (var i = 0; i < 5; i++) { try { request.get(R + '/echo'); } catch (e) {} }",
        )
    finally:
        await sandbox.close()
        await outbound.close()
    assert outcome.error is not None
    assert outcome.error["type"] == "http_limit"
    assert "ARANGOTASKS_HTTP_MAX_REQUESTS" in outcome.error["message"]
    assert [entry["status"] for entry in outcome.requests] == [200, 200, 200, None]


async def test_a_long_url_is_clipped_in_the_record(sandbox, remote):
    outcome = await run(
        sandbox, remote, "return request.get(R + '/echo?' + 'x'.repeat(5000)).status"
    )
    assert value(outcome) == 200
    assert len(outcome.requests[0]["url"]) == 2048
    assert outcome.requests[0]["url"].endswith("xx...")

"""The outbound allowlist's hostile cases through the sandbox: refused requests open no
connection (a listener counts what it accepts). The rules themselves: test_http_allowlist_rules.py.
"""

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from arangotasks.models import RunOutcome
from arangotasks.sandbox import QuickJSSandbox
from arangotasks.sandbox.host import HostCalls
from tests.unit.http_remote import Listener, remote_app, serve, use_outbound

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def remote() -> AsyncIterator[int]:
    async with serve(remote_app()) as port:
        yield port


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def listener() -> AsyncIterator[Listener]:
    listener = Listener()
    await listener.start()
    yield listener
    await listener.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calls() -> HostCalls:
    return HostCalls()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(calls: HostCalls) -> AsyncIterator[QuickJSSandbox]:
    sandbox = QuickJSSandbox(workers=2, compile_workers=0, host=calls)
    await sandbox.start()
    yield sandbox
    await sandbox.close()


async def attempt(sandbox: QuickJSSandbox, url: str) -> RunOutcome:
    command = f"return require('@arangodb/request').get({url!r}).status"
    return await sandbox.run(command, None)


def refused(outcome: RunOutcome, host: str) -> str:
    assert outcome.error is not None, outcome
    message = outcome.error["message"]
    assert message.startswith(f"request to {host} refused: "), message
    return message


async def test_no_allowlist_means_no_request(sandbox, calls, listener):
    outbound = use_outbound(calls)
    try:
        outcome = await attempt(sandbox, f"http://127.0.0.1:{listener.port}/")
    finally:
        await outbound.close()
    assert "ARANGOTASKS_HTTP_ALLOW is empty" in refused(outcome, "127.0.0.1")
    assert listener.accepted == 0


async def test_an_unlisted_port_opens_no_connection(sandbox, calls, listener, remote):
    outbound = use_outbound(calls, http_allow=f"127.0.0.1:{remote}")
    try:
        outcome = await attempt(sandbox, f"http://127.0.0.1:{listener.port}/")
    finally:
        await outbound.close()
    assert "not allowed by ARANGOTASKS_HTTP_ALLOW" in refused(outcome, "127.0.0.1")
    assert listener.accepted == 0
    assert outcome.requests[0]["error"] == outcome.error["message"]  # type: ignore[index]


async def test_a_name_that_resolves_to_loopback_is_refused(sandbox, calls, listener):
    outbound = use_outbound(calls, http_allow="localhost")
    try:
        outcome = await attempt(sandbox, f"http://localhost:{listener.port}/")
    finally:
        await outbound.close()
    assert "is not a public address" in refused(outcome, "localhost")
    assert listener.accepted == 0


async def test_a_name_with_its_port_may_reach_loopback(sandbox, calls, remote):
    outbound = use_outbound(calls, http_allow=f"localhost:{remote}")
    try:
        outcome = await attempt(sandbox, f"http://localhost:{remote}/echo")
    finally:
        await outbound.close()
    assert outcome.result_json == "200", outcome.error


async def test_a_cidr_rule_reaches_loopback(sandbox, calls, remote):
    outbound = use_outbound(calls, http_allow="127.0.0.0/8")
    try:
        outcome = await attempt(sandbox, f"http://127.0.0.1:{remote}/echo")
    finally:
        await outbound.close()
    assert outcome.result_json == "200", outcome.error


async def test_the_metadata_address_is_refused(sandbox, calls):
    outbound = use_outbound(calls, http_allow="*.amazonaws.com, metadata.google.internal")
    try:
        outcome = await attempt(sandbox, "http://169.254.169.254/latest/meta-data/")
    finally:
        await outbound.close()
    refused(outcome, "169.254.169.254")


async def test_a_redirect_to_a_refused_host_is_refused(sandbox, calls, listener, remote):
    outbound = use_outbound(calls, http_allow=f"127.0.0.1:{remote}")
    target = f"http://localhost:{listener.port}/"
    try:
        outcome = await attempt(sandbox, f"http://127.0.0.1:{remote}/to?url={target}")
    finally:
        await outbound.close()
    refused(outcome, "localhost")
    assert listener.accepted == 0
    assert [entry["status"] for entry in outcome.requests] == [302, None]


async def test_the_servers_own_port_is_refused(sandbox, calls, listener):
    # The listener stands for this server: Settings.port is its port.
    outbound = use_outbound(calls, http_allow="127.0.0.0/8", port=listener.port)
    try:
        outcome = await attempt(sandbox, f"http://127.0.0.1:{listener.port}/_api/tasks")
    finally:
        await outbound.close()
    assert "this server's own address" in refused(outcome, "127.0.0.1")
    assert listener.accepted == 0


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("file:///etc/passwd", "file:///etc/passwd"),
        ("ftp://127.0.0.1/x", "127.0.0.1"),
        ("gopher://127.0.0.1:70/", "127.0.0.1"),
    ],
)
async def test_other_schemes_are_refused(sandbox, calls, url, host):
    outbound = use_outbound(calls, http_allow="127.0.0.0/8")
    try:
        outcome = await attempt(sandbox, url)
    finally:
        await outbound.close()
    assert "only http and https" in refused(outcome, host)


async def test_a_redirect_to_another_scheme_is_refused(sandbox, calls, remote):
    outbound = use_outbound(calls, http_allow=f"127.0.0.1:{remote}")
    try:
        outcome = await attempt(sandbox, f"http://127.0.0.1:{remote}/to?url=file:///etc/passwd")
    finally:
        await outbound.close()
    assert outcome.error is not None
    assert "only http and https" in outcome.error["message"]


async def test_per_database_rules_replace_the_setting(sandbox, calls, remote):
    from arangotasks.config import Settings
    from arangotasks.outbound import Outbound

    outbound = Outbound(Settings(http_allow=""), {"reports": [f"127.0.0.1:{remote}"]})
    outbound.register(calls)
    command = f"return require('@arangodb/request').get('http://127.0.0.1:{remote}/echo').status"
    try:
        allowed = await sandbox.run(command, None, database="reports")
        other = await sandbox.run(command, None, database="_system")
    finally:
        await outbound.close()
    assert allowed.result_json == "200", allowed.error
    assert "ARANGOTASKS_HTTP_ALLOW is empty" in refused(other, "127.0.0.1")

"""A task's ``notify`` URL with a real ``arangotasks serve``: kept across a restart, and a failed
run posted to a local receiver, signed."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.http import Http

pytestmark = pytest.mark.e2e

SECRET = "e2e-webhook-secret"


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook():
    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Hook.received
    server.shutdown()
    server.server_close()


def test_notify_survives_a_restart_and_a_failure_is_posted_signed(make_server, hook):
    url, received = hook
    port = url.split(":")[2].split("/")[0]
    env = {"ARANGOTASKS_HTTP_ALLOW": f"127.0.0.1:{port}", "ARANGOTASKS_WEBHOOK_SECRET": SECRET}
    server = make_server(**env)
    http = Http(server.url)
    body = {"command": "throw new Error('down');", "period": 3600, "offset": 3600, "notify": url}
    task = http.ok("PUT", "/_api/tasks/hooked", body)
    assert task["notify"] == url and list(task)[-1] == "notify"
    assert server.stop() == 0
    server.start()
    http = Http(server.url)
    assert http.ok("GET", "/_api/tasks/hooked") == task
    status, run = http.call("POST", "/_api/tasks/hooked/run")
    assert status == 202, run
    deadline = time.monotonic() + 30
    while not received:
        assert time.monotonic() < deadline, "no notification"
        time.sleep(0.05)
    headers, payload = received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    assert headers["X-Arangotasks-Signature"] == expected
    event = json.loads(payload)
    assert (event["event"], event["run"]["uid"], event["run"]["status"]) == (
        "run.failed",
        run["uid"],
        "failed",
    )

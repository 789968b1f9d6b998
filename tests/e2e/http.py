"""A tiny synchronous client for raw HTTP against a real server (requests, root by default)."""

import time
from typing import Any

import requests

from tests.conftest import ROOT_PASSWORD


class Http:
    def __init__(self, url: str, auth: tuple[str, str] = ("root", ROOT_PASSWORD)):
        self.url = url
        self.session = requests.Session()
        self.session.auth = auth

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = self.session.request(method, self.url + path, json=body, timeout=30)
        return resp.status_code, resp.json()

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.call(method, path, body)
        assert 200 <= status < 300, (status, data)
        return data

    def wait_runs(self, query: str, count: int, within: float = 15.0) -> dict:
        """Poll the runs API until ``count`` finished runs match ``query``."""
        deadline = time.monotonic() + within
        while True:
            page = self.ok(
                "GET", f"/_api/runs?{query}&statuses=succeeded,failed,canceled&limit=1000"
            )
            if page["total"] >= count:
                return page
            if time.monotonic() > deadline:
                raise AssertionError(f"only {page['total']} of {count} runs for {query}")
            time.sleep(0.05)

    def close(self) -> None:
        self.session.close()

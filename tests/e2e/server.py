"""Start and stop a real ``arangotasks serve`` process on a free loopback port."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import JWT_SECRET, ROOT_PASSWORD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server on ``data_dir``; ``start()`` again after ``stop()`` reuses the same data."""

    def __init__(self, data_dir: Path, users_file: Path | None = None, **env: str):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "ARANGOTASKS_ROOT_PASSWORD": ROOT_PASSWORD,
            "ARANGOTASKS_JWT_SECRET": JWT_SECRET,
            "ARANGOTASKS_WORKERS": "2",
            **({"ARANGOTASKS_CONFIG": str(users_file)} if users_file else {}),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None
        self.preexec_fn = None  # e.g. to lower the server's resource limits

    def start(self, timeout: float = 20.0) -> None:
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "arangotasks",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            preexec_fn=self.preexec_fn,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                urllib.request.urlopen(self.url + "/_api/version", timeout=1)
            except urllib.error.HTTPError:
                return  # 401: it answers
            except OSError:
                time.sleep(0.05)
            else:
                return
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout} s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

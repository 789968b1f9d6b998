"""Command line: ``arangotasks serve``, ``arangotasks run FILE.js``, and the client commands
``arangotasks tasks ...`` and ``arangotasks secrets ...`` (in :mod:`arangotasks.client`)."""

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arangotasks import __version__, client

# The server's modules are imported by the commands that need them: the client commands start
# several times faster without aiohttp, pydantic and the scheduler.
if TYPE_CHECKING:
    from arangotasks.config import Settings

log = logging.getLogger("arangotasks")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arangotasks", description=__doc__)
    parser.add_argument("--version", action="version", version=f"arangotasks {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8529)")
    serve.add_argument("--data-dir", type=Path, help="folder of the SQLite store (default ./data)")
    serve.add_argument("--store", help="store URL: sqlite:///path or postgresql://...")
    serve.add_argument("--config", type=Path, help="TOML file with users and databases")
    serve.add_argument("--workers", type=int, help="JavaScript worker processes (default: cores)")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (default INFO)")
    serve.add_argument(
        "--no-auth", action="store_const", const=True, help="turn authentication off"
    )
    run = commands.add_parser("run", help="run a command file once in the task sandbox")
    run.add_argument("file", help="JavaScript function body, as a task's command")
    run.add_argument("--params", help="params as JSON (default: absent)")
    run.add_argument("--timeout", type=float, help="time limit in seconds")
    client.add_parsers(commands)
    commands.add_parser(
        "hash-password",
        help="print an argon2 hash of a password (read from stdin) for the users file",
    )
    return parser


def _hash_password() -> int:
    from getpass import getpass

    from arangotasks.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass("password: ")
        if getpass("again: ") != password:
            print("arangotasks: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    print(hash_password(password))
    return 0


def _settings(args: argparse.Namespace) -> "Settings":
    from arangotasks.config import Settings

    overrides: dict[str, Any] = {
        key: value
        for key, value in vars(args).items()
        if key not in ("command",) and value is not None
    }
    return Settings(**overrides)


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _lock_dirs(settings: "Settings") -> list[Path]:
    """The directories a server must have to itself: the data dir and a SQLite file's own."""
    from arangotasks.store import open_store
    from arangotasks.store.sqlite import SQLiteStore

    dirs = [settings.data_dir]
    store = open_store(settings.store, settings.data_dir)  # not opened: only its path is used
    if isinstance(store, SQLiteStore):
        if store.path.parent.resolve() != settings.data_dir.resolve():
            dirs.append(store.path.parent)
    return dirs


async def _serve(settings: "Settings") -> None:
    from aiohttp import web

    from arangotasks.api.protocol import ArangoAppRunner, ConnectionPolicy
    from arangotasks.app import create_app
    from arangotasks.auth import start_warnings
    from arangotasks.fds import (
        ACCEPT_BACKLOG,
        connection_cap,
        deepen_listen_queue,
        raise_nofile_limit,
    )
    from arangotasks.keys import ACCESS
    from arangotasks.logs import access_log_options

    fd_limit = raise_nofile_limit()
    workers = settings.workers or os.cpu_count() or 1
    cap = connection_cap(settings.max_connections, fd_limit, workers, settings.compile_workers)
    app = create_app(settings)
    runner = ArangoAppRunner(
        app,
        policy=ConnectionPolicy(header_timeout=settings.header_timeout, max_connections=cap),
        handle_signals=False,
        keepalive_timeout=settings.keepalive_timeout,
        **access_log_options(settings),
    )
    await runner.setup()  # opens the store, starts the workers, loads the tasks
    try:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=ACCEPT_BACKLOG)
        await site.start()
        server = site._server  # aiohttp keeps the asyncio server private
        if server is not None:
            deepen_listen_queue(server.sockets)  # type: ignore[attr-defined]
        store = _redact(settings.store) if settings.store else f"sqlite in {settings.data_dir}"
        auth = "off" if settings.no_auth else "on (basic + JWT)"
        for host, port, *_ in runner.addresses:
            log.info("arangotasks %s listening on http://%s:%s", __version__, host, port)
        log.info("store: %s; authentication: %s", store, auth)
        log.info("connections: at most %d open (open file limit %d)", cap, fd_limit)
        for warning in start_warnings(settings, app[ACCESS]):
            log.warning("%s", warning)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("stopping")
    finally:
        await runner.cleanup()
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in client.COMMANDS:
        return client.run(args)
    if args.command == "hash-password":
        return _hash_password()
    if args.command == "run":
        from arangotasks.runfile import run_file

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from pydantic import ValidationError

        from arangotasks.config import Settings

        try:
            # The server's sandbox limits (ARANGOTASKS_MEMORY_MB, _TIMEOUT, ...), so that a command
            # tried here behaves as it will in a task.
            run_settings = Settings()
        except ValidationError as exc:
            print(f"arangotasks: invalid setting: {exc}", file=sys.stderr)
            return 2
        return run_file(args.file, args.params, args.timeout, run_settings)
    from pydantic import ValidationError

    from arangotasks.logs import configure_logging

    try:
        settings = _settings(args)
    except ValidationError as exc:
        print(f"arangotasks: invalid setting: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    from arangotasks.datadir import DataDirError, DirectoryLock, make_private_dir
    from arangotasks.errors import StoreLockedError, StoreUnavailableError

    locks: list[DirectoryLock] = []
    try:
        make_private_dir(settings.data_dir)
        for directory in _lock_dirs(settings):
            locks.append(DirectoryLock(directory))
            locks[-1].acquire()
        asyncio.run(_serve(settings))
    except ValueError as exc:  # a bad config file or store URL
        print(f"arangotasks: {exc}", file=sys.stderr)
        return 2
    except (DataDirError, StoreLockedError) as exc:  # another server has it, a bad secret
        print(f"arangotasks: {exc}", file=sys.stderr)
        return 1
    except StoreUnavailableError as exc:  # e.g. a corrupt SQLite file: left as it is
        print(f"arangotasks: task store unusable: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. the port is taken
        print(f"arangotasks: {exc}", file=sys.stderr)
        return 1
    finally:
        for lock in locks:
            lock.release()
    return 0

"""The command-line client: ``arangotasks tasks ...`` and ``arangotasks secrets ...`` talk to a
running server over HTTP (standard library only)."""

import argparse
import os
import sys
from typing import Any

from arangotasks.client import secrets, tasks
from arangotasks.client.http import ClientError, Connection

COMMANDS = ("tasks", "secrets")
DEFAULT_SERVER = "http://127.0.0.1:8529"


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument("--server", help=f"server URL (ARANGOTASKS_URL, default {DEFAULT_SERVER})")
    group.add_argument("--user", help="user name (ARANGOTASKS_USER, default root)")
    group.add_argument("--password", help="password (ARANGOTASKS_PASSWORD, default empty)")
    group.add_argument("--database", help="database of new tasks; filters lists")
    group.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    return common


def add_parsers(commands: Any) -> None:
    """Add ``tasks`` and ``secrets`` to the ``arangotasks`` parser's subcommands."""
    common = _common()
    tasks.add_parser(commands, common)
    secrets.add_parser(commands, common)


def connection(args: argparse.Namespace) -> Connection:
    env = os.environ
    return Connection(
        server=args.server or env.get("ARANGOTASKS_URL") or DEFAULT_SERVER,
        user=args.user or env.get("ARANGOTASKS_USER") or "root",
        password=args.password
        if args.password is not None
        else env.get("ARANGOTASKS_PASSWORD", ""),
        database=args.database,
    )


def run(args: argparse.Namespace) -> int:
    """Run the parsed client command; errors end as one line on stderr and a non-zero code."""
    try:
        code: int = args.func(connection(args), args)
    except ClientError as exc:
        print(f"arangotasks: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `arangotasks tasks list | head`
        return 0
    return code

"""``arangotasks secrets ...``: the secrets API (values are read from stdin, never from argv)."""

import argparse
import getpass
import sys
from typing import Any

from arangotasks.client import output
from arangotasks.client.http import EXIT_USAGE, ClientError, Connection, quote


def _items(answer: Any) -> list[Any]:
    """The list of an answer: a bare array, or one under ``result``/``secrets``."""
    if isinstance(answer, dict):
        for key in ("result", "secrets"):
            if isinstance(answer.get(key), list):
                return list(answer[key])
    return list(answer) if isinstance(answer, list) else []


def cmd_list(conn: Connection, args: argparse.Namespace) -> int:
    answer = conn.request("GET", "/_api/secrets")
    if args.json:
        output.emit_json(answer)
        return 0
    items = _items(answer)
    if all(isinstance(item, dict) for item in items) and items:
        columns = list(dict.fromkeys(key for item in items for key in item if key != "value"))
        output.table(columns, [[item.get(c) for c in columns] for item in items])
    else:
        output.table(["name"], [[item] for item in items])
    return 0


def _read_value() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("value: ")
    value = sys.stdin.read()
    # `echo secret | arangotasks secrets set NAME` must not store the newline.
    if value.endswith("\n"):
        value = value[:-1]
        if value.endswith("\r"):
            value = value[:-1]
    return value


def cmd_set(conn: Connection, args: argparse.Namespace) -> int:
    value = _read_value()
    if not value:
        raise ClientError("no value on standard input", EXIT_USAGE)
    answer = conn.request("PUT", f"/_api/secrets/{quote(args.name)}", {"value": value})
    if args.json:
        output.emit_json(answer)
    else:
        print(f"set {args.name}")
    return 0


def cmd_delete(conn: Connection, args: argparse.Namespace) -> int:
    answer = conn.request("DELETE", f"/_api/secrets/{quote(args.name)}")
    if args.json:
        output.emit_json(answer)
    else:
        print(f"deleted {args.name}")
    return 0


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    secrets = commands.add_parser("secrets", help="values that tasks read without seeing them")
    sub = secrets.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="names of the secrets", parents=[common])
    listing.set_defaults(func=cmd_list)
    setting = sub.add_parser(
        "set", help="set a secret; the value is read from stdin", parents=[common]
    )
    setting.add_argument("name")
    setting.set_defaults(func=cmd_set)
    deleting = sub.add_parser("delete", help="delete a secret", parents=[common])
    deleting.add_argument("name")
    deleting.set_defaults(func=cmd_delete)

"""A small AQL interpreter for the ArangoDB contract double (tests only, not a real AQL engine).

It covers the AQL that the ``db`` bridge generates (``all``, ``byExample``, ``firstExample``,
``updateByExample``, ``removeByExample``), what python-arango sends for ``find``/``all``, and what
the sample commands and the tests write: ``FOR ... IN`` (collections, arrays, ranges), ``LET``,
``FILTER``, ``SORT``, ``LIMIT``, ``COLLECT WITH COUNT INTO``, ``RETURN [DISTINCT]``, ``INSERT``,
``UPDATE``/``REPLACE ... [WITH ...] IN``, ``REMOVE ... IN`` with ``OPTIONS`` and ``RETURN NEW/OLD``,
expressions with AQL's type ordering, bind parameters (``@x``, ``@@c``) and a handful of functions.
Errors carry ArangoDB's numbers and message forms (1501 syntax, 1203 unknown collection, 1540
unknown function, 1551/1552 bind parameters), from ArangoDB's error-code list.
"""

import functools
import math
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>\d+\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<bind>@@?[A-Za-z_][A-Za-z0-9_]*)
    | (?P<name>`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\.\.|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}=])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {
    "FOR", "IN", "RETURN", "FILTER", "SORT", "LIMIT", "LET", "COLLECT", "WITH", "COUNT", "INTO",
    "INSERT", "UPDATE", "REPLACE", "REMOVE", "OPTIONS", "ASC", "DESC", "DISTINCT", "AND", "OR",
    "NOT", "LIKE", "TRUE", "FALSE", "NULL",
}  # fmt: skip


class AqlError(Exception):
    """An AQL failure as ArangoDB reports it: HTTP status, errorNum, errorMessage."""

    def __init__(self, code: int, num: int, message: str) -> None:
        super().__init__(message)
        self.code, self.num, self.message = code, num, message


def _syntax(message: str) -> AqlError:
    return AqlError(400, 1501, f"AQL: syntax error, {message} (while parsing)")


class _Tokens:
    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str]] = []
        pos = 0
        text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise _syntax(f"unexpected character near '{text[pos : pos + 20].strip()}'")
            kind = match.lastgroup
            assert kind is not None
            value = match.group(kind)
            if kind == "name" and value.upper() in _KEYWORDS:
                kind, value = "kw", value.upper()
            elif kind == "name" and value.startswith("`"):
                value = value[1:-1]
            self.items.append((kind, value))
            pos = match.end()
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.items[index] if index < len(self.items) else ("end", "")

    def take(self) -> tuple[str, str]:
        item = self.peek()
        self.pos += 1
        return item

    def accept(self, kind: str, value: str | None = None) -> bool:
        k, v = self.peek()
        if k == kind and (value is None or v == value):
            self.pos += 1
            return True
        return False

    def expect(self, kind: str, value: str | None = None) -> str:
        k, v = self.take()
        if k != kind or (value is not None and v != value):
            raise _syntax(f"unexpected {v or 'end of query'!r}, expecting {value or kind}")
        return v


# ------------------------------------------------------------------------------ values
def _rank(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, list):
        return 4
    return 5


def compare(a: Any, b: Any) -> int:
    """AQL's total order: null < bool < number < string < array < object."""
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra in (1, 2, 3):
        return (a > b) - (a < b)
    if ra == 4:
        for x, y in zip(a, b, strict=False):
            c = compare(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 5:
        for key in sorted(set(a) | set(b)):
            c = compare(a.get(key), b.get(key))
            if c:
                return c
    return 0


def truthy(value: Any) -> bool:
    if isinstance(value, list | dict):
        return True
    return bool(value)


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0
    return 0


def _like(text: Any, pattern: Any) -> bool:
    regex = "".join(
        ".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in str(pattern)
    )
    return re.fullmatch(regex, str(text), flags=re.S) is not None


def _arith(op: str, a: Any, b: Any) -> Any:
    x, y = _number(a), _number(b)
    if op == "+":
        r = x + y
    elif op == "-":
        r = x - y
    elif op == "*":
        r = x * y
    elif y == 0:
        return None  # AQL: division by zero gives null (with a warning)
    elif op == "/":
        r = x / y
    else:
        r = math.fmod(x, y)
    return int(r) if isinstance(r, float) and r.is_integer() and abs(r) < 2**53 else r


def _date_iso(value: Any) -> str:
    dt = datetime.fromtimestamp(_number(value) / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _merge(*docs: Any) -> Any:
    out: dict[str, Any] = {}
    for doc in docs:
        if isinstance(doc, dict):
            out.update(doc)
    return out


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "DATE_NOW": lambda: int(time.time() * 1000),
    "DATE_ISO8601": _date_iso,
    "LENGTH": lambda v: len(v) if isinstance(v, list | dict | str) else int(bool(v)),
    "COUNT": lambda v: len(v) if isinstance(v, list) else 0,
    "CONCAT": lambda *v: "".join("" if x is None else str(x) for x in v),
    "UPPER": lambda v: str(v).upper(),
    "LOWER": lambda v: str(v).lower(),
    "MERGE": _merge,
    "HAS": lambda doc, key: isinstance(doc, dict) and key in doc,
    "IS_NULL": lambda v: v is None,
    "SUM": lambda v: sum(_number(x) for x in v if x is not None),
    "MAX": lambda v: max((x for x in v if x is not None), default=None, key=_number),
    "MIN": lambda v: min((x for x in v if x is not None), default=None, key=_number),
    "ROUND": lambda v: round(_number(v)),
    "FLOOR": lambda v: math.floor(_number(v)),
    "TO_NUMBER": _number,
    "TO_STRING": lambda v: "" if v is None else str(v),
    "UNSET": lambda doc, *keys: {k: v for k, v in doc.items() if k not in keys},
    "FIRST": lambda v: v[0] if isinstance(v, list) and v else None,
    "SLEEP": lambda seconds: time.sleep(min(_number(seconds), 30)),  # blocks the double: tests only
}

Node = Callable[[dict[str, Any]], Any]


class Collections:
    """What the interpreter needs of the double's storage (see ``double.Database``)."""

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def documents(self, name: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def insert(self, name: str, doc: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def modify(
        self, name: str, key: str, body: dict[str, Any], *, replace: bool, keep_null: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(old, new) of a document updated or replaced."""
        raise NotImplementedError

    def remove(self, name: str, key: str) -> dict[str, Any]:
        raise NotImplementedError


class Result:
    def __init__(self) -> None:
        self.rows: list[Any] = []
        self.writes_executed = 0
        self.scanned = 0
        self.filtered = 0


Op = Callable[[Iterator[dict[str, Any]], Result], Iterator[dict[str, Any]]]


class _Compiler:
    def __init__(self, text: str, bind: dict[str, Any], db: Collections) -> None:
        self.t = _Tokens(text)
        self.bind = bind
        self.used: set[str] = set()
        self.db = db
        self.scope: set[str] = set()
        self.no_in = False  # parsing the target of REMOVE/UPDATE/REPLACE: IN ends it

    # ---------------------------------------------------------------- operations
    def query(self) -> list[Op]:
        ops: list[Op] = []
        while True:
            kind, word = self.t.peek()
            if kind == "end":
                break
            if kind != "kw":
                raise _syntax(f"unexpected {word!r}")
            self.t.take()
            handler = getattr(self, "_op_" + word.lower(), None)
            if handler is None:
                raise _syntax(f"unexpected {word}")
            ops.append(handler())
            if word == "RETURN":
                if self.t.peek()[0] != "end":
                    raise _syntax(f"unexpected {self.t.peek()[1]!r} after RETURN")
                break
        unused = set(self.bind) - self.used
        if unused:
            name = sorted(unused)[0]
            raise AqlError(
                400,
                1552,
                f"AQL: bind parameter '{name}' was not declared in the query (while parsing)",
            )
        return ops

    def _variable(self) -> str:
        kind, name = self.t.take()
        if kind != "name":
            raise _syntax(f"unexpected {name!r}, expecting a variable name")
        self.scope.add(name)
        return name

    def _op_for(self) -> Op:
        var = self._variable()
        self.t.expect("kw", "IN")
        source = self.expr()
        self._options()

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            for row in rows:
                items = source(row)
                if not isinstance(items, list):
                    items = []
                res.scanned += len(items)
                for item in list(items):
                    yield {**row, var: item}

        return run

    def _op_let(self) -> Op:
        var = self._variable()
        self.t.expect("op", "=")
        value = self.expr()
        return lambda rows, res: ({**row, var: value(row)} for row in rows)

    def _op_filter(self) -> Op:
        cond = self.expr()

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            for row in rows:
                if truthy(cond(row)):
                    yield row
                else:
                    res.filtered += 1

        return run

    def _op_sort(self) -> Op:
        keys: list[tuple[Node, bool]] = []
        while True:
            key = self.expr()
            desc = self.t.accept("kw", "DESC")
            if not desc:
                self.t.accept("kw", "ASC")
            keys.append((key, desc))
            if not self.t.accept("op", ","):
                break

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            def order(a: dict[str, Any], b: dict[str, Any]) -> int:
                for key, desc in keys:
                    c = compare(key(a), key(b))
                    if c:
                        return -c if desc else c
                return 0

            return iter(sorted(rows, key=functools.cmp_to_key(order)))

        return run

    def _op_limit(self) -> Op:
        first = self.expr()
        second = self.expr() if self.t.accept("op", ",") else None

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            offset, count = (0, first({})) if second is None else (first({}), second({}))
            offset = int(_number(offset))
            end = None if count is None else offset + int(_number(count))  # LIMIT 0, null
            for index, row in enumerate(rows):
                if end is not None and index >= end:
                    break
                if index >= offset:
                    yield row

        return run

    def _op_collect(self) -> Op:
        self.t.expect("kw", "WITH")
        self.t.expect("kw", "COUNT")
        self.t.expect("kw", "INTO")
        var = self._variable()
        return lambda rows, res: iter([{var: sum(1 for _ in rows)}])

    def _op_return(self) -> Op:
        distinct = self.t.accept("kw", "DISTINCT")
        value = self.expr()

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            for row in rows:
                item = value(row)
                if distinct and any(compare(item, seen) == 0 for seen in res.rows):
                    continue
                res.rows.append(item)
            return iter(())

        return run

    def _collection(self) -> str:
        kind, name = self.t.take()
        if kind == "bind" and name.startswith("@@"):
            name = self._bind_value(name[2:], collection=True)
        elif kind != "name":
            raise _syntax(f"unexpected {name!r}, expecting a collection name")
        self._check_collection(name)
        return name

    def _options(self) -> dict[str, Any]:
        if not self.t.accept("kw", "OPTIONS"):
            return {}
        value = self.expr()({})
        return value if isinstance(value, dict) else {}

    def _op_insert(self) -> Op:
        doc = self.expr()
        if not (self.t.accept("kw", "INTO") or self.t.accept("kw", "IN")):
            raise _syntax("expecting INTO")
        coll = self._collection()
        self._options()
        self.scope.add("NEW")

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            for row in rows:
                new = self.db.insert(coll, doc(row))
                res.writes_executed += 1
                yield {**row, "NEW": new}

        return run

    def _target(self) -> Node:
        self.no_in = True
        try:
            return self.expr()
        finally:
            self.no_in = False

    def _modify(self, replace: bool) -> Op:
        first = self._target()
        body = self._target() if self.t.accept("kw", "WITH") else None
        self.t.expect("kw", "IN")
        coll = self._collection()
        options = self._options()
        keep_null = bool(options.get("keepNull", True))
        self.scope.update(("NEW", "OLD"))

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            for row in rows:
                target = first(row)
                patch = body(row) if body is not None else target
                key = target.get("_key") if isinstance(target, dict) else target
                if not isinstance(patch, dict):
                    raise AqlError(400, 1227, "invalid document type")
                old, new = self.db.modify(
                    coll, str(key), patch, replace=replace, keep_null=keep_null
                )
                res.writes_executed += 1
                yield {**row, "OLD": old, "NEW": new}

        return run

    def _op_update(self) -> Op:
        return self._modify(replace=False)

    def _op_replace(self) -> Op:
        return self._modify(replace=True)

    def _op_remove(self) -> Op:
        target = self._target()
        self.t.expect("kw", "IN")
        coll = self._collection()
        self._options()
        self.scope.add("OLD")

        def run(rows: Iterator[dict[str, Any]], res: Result) -> Iterator[dict[str, Any]]:
            for row in rows:
                value = target(row)
                key = value.get("_key") if isinstance(value, dict) else value
                old = self.db.remove(coll, str(key))
                res.writes_executed += 1
                yield {**row, "OLD": old}

        return run

    # ---------------------------------------------------------------- expressions
    def _bind_value(self, name: str, *, collection: bool = False) -> Any:
        key = "@" + name if collection else name
        if key not in self.bind:
            raise AqlError(
                400,
                1551,
                f"AQL: no value specified for declared bind parameter '{key}' (while parsing)",
            )
        self.used.add(key)
        return self.bind[key]

    def _check_collection(self, name: str) -> None:
        if not isinstance(name, str) or not self.db.exists(name):
            raise AqlError(404, 1203, f"AQL: collection or view not found: {name} (while parsing)")

    def expr(self) -> Node:
        cond = self._or()
        if not self.t.accept("op", "?"):
            return cond
        yes = self.expr()
        self.t.expect("op", ":")
        no = self.expr()
        return lambda row: yes(row) if truthy(cond(row)) else no(row)

    def _or(self) -> Node:
        left = self._and()
        while self.t.accept("op", "||") or self.t.accept("kw", "OR"):
            right, prev = self._and(), left
            left = lambda row, a=prev, b=right: a(row) if truthy(a(row)) else b(row)  # noqa: E731
        return left

    def _and(self) -> Node:
        left = self._not()
        while self.t.accept("op", "&&") or self.t.accept("kw", "AND"):
            right, prev = self._not(), left
            left = lambda row, a=prev, b=right: b(row) if truthy(a(row)) else a(row)  # noqa: E731
        return left

    def _not(self) -> Node:
        if self.t.accept("op", "!") or self.t.accept("kw", "NOT"):
            inner = self._not()
            return lambda row: not truthy(inner(row))
        return self._compare()

    def _compare(self) -> Node:
        left = self._range()
        while True:
            kind, op = self.t.peek()
            negate = False
            if kind == "kw" and op == "NOT" and self.t.peek(1) == ("kw", "IN"):
                self.t.take()
                negate, op = True, "IN"
            elif not (
                (kind == "op" and op in ("==", "!=", "<", "<=", ">", ">="))
                or (kind == "kw" and op in ("IN", "LIKE"))
            ) or (op == "IN" and self.no_in and not negate):
                return left
            self.t.take()
            right, prev = self._range(), left
            left = self._comparison(op, negate, prev, right)

    @staticmethod
    def _comparison(op: str, negate: bool, a: Node, b: Node) -> Node:
        def run(row: dict[str, Any]) -> bool:
            x, y = a(row), b(row)
            if op == "IN":
                found = isinstance(y, list) and any(compare(x, item) == 0 for item in y)
                return found != negate
            if op == "LIKE":
                return _like(x, y)
            c = compare(x, y)
            return {"==": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0}.get(
                op, c >= 0
            )

        return run

    def _range(self) -> Node:
        left = self._additive()
        if not self.t.accept("op", ".."):
            return left
        right = self._additive()
        return lambda row: list(range(int(_number(left(row))), int(_number(right(row))) + 1))

    def _additive(self) -> Node:
        left = self._multiplicative()
        while self.t.peek() in (("op", "+"), ("op", "-")):
            op = self.t.take()[1]
            right, prev = self._multiplicative(), left
            left = lambda row, o=op, a=prev, b=right: _arith(o, a(row), b(row))  # noqa: E731
        return left

    def _multiplicative(self) -> Node:
        left = self._unary()
        while self.t.peek() in (("op", "*"), ("op", "/"), ("op", "%")):
            op = self.t.take()[1]
            right, prev = self._unary(), left
            left = lambda row, o=op, a=prev, b=right: _arith(o, a(row), b(row))  # noqa: E731
        return left

    def _unary(self) -> Node:
        if self.t.accept("op", "-"):
            inner = self._unary()
            return lambda row: _arith("-", 0, inner(row))
        if self.t.accept("op", "+"):
            inner = self._unary()
            return lambda row: _number(inner(row))
        return self._postfix()

    def _postfix(self) -> Node:
        node = self._primary()
        while True:
            if self.t.accept("op", "."):
                kind, name = self.t.take()
                if kind not in ("name", "kw"):
                    raise _syntax(f"unexpected {name!r} after '.'")
                node = lambda row, n=node, k=name: _attr(n(row), k)  # noqa: E731
            elif self.t.peek() == ("op", "["):
                self.t.take()
                index = self.expr()
                self.t.expect("op", "]")
                node = lambda row, n=node, i=index: _index(n(row), i(row))  # noqa: E731
            else:
                return node

    def _primary(self) -> Node:
        kind, value = self.t.take()
        if kind == "num":
            number = float(value) if any(c in value for c in ".eE") else int(value)
            return lambda row: number
        if kind == "str":
            text = _unquote(value)
            return lambda row: text
        if kind == "kw" and value in ("TRUE", "FALSE", "NULL"):
            constant = {"TRUE": True, "FALSE": False, "NULL": None}[value]
            return lambda row: constant
        if kind == "bind":
            if value.startswith("@@"):
                name = self._bind_value(value[2:], collection=True)
                self._check_collection(name)
                return lambda row: self.db.documents(name)
            bound = self._bind_value(value[1:])
            return lambda row: bound
        if kind == "op" and value == "(":
            inner = self.expr()
            self.t.expect("op", ")")
            return inner
        if kind == "op" and value == "[":
            return self._array()
        if kind == "op" and value == "{":
            return self._object()
        if kind == "name":
            return self._name(value)
        raise _syntax(f"unexpected {value or 'end of query'!r}")

    def _array(self) -> Node:
        items: list[Node] = []
        while not self.t.accept("op", "]"):
            items.append(self.expr())
            if not self.t.accept("op", ","):
                self.t.expect("op", "]")
                break
        return lambda row: [item(row) for item in items]

    def _object(self) -> Node:
        fields: list[tuple[str, Node]] = []
        while not self.t.accept("op", "}"):
            kind, key = self.t.take()
            if kind == "str":
                key = _unquote(key)
            elif kind not in ("name", "kw"):
                raise _syntax(f"unexpected {key!r} in an object")
            if self.t.accept("op", ":"):
                fields.append((key, self.expr()))
            else:  # {name} is {name: name}
                fields.append((key, self._name(key)))
            if not self.t.accept("op", ","):
                self.t.expect("op", "}")
                break
        return lambda row: {key: value(row) for key, value in fields}

    def _name(self, name: str) -> Node:
        if self.t.accept("op", "("):
            args: list[Node] = []
            while not self.t.accept("op", ")"):
                args.append(self.expr())
                if not self.t.accept("op", ","):
                    self.t.expect("op", ")")
                    break
            function = FUNCTIONS.get(name.upper())
            if function is None:
                raise AqlError(
                    400, 1540, f"AQL: usage of unknown function '{name.upper()}()' (while parsing)"
                )
            return lambda row: function(*(arg(row) for arg in args))
        if name in self.scope:
            return lambda row: row.get(name)
        self._check_collection(name)
        return lambda row: self.db.documents(name)


def _attr(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _index(value: Any, index: Any) -> Any:
    if isinstance(value, dict):
        return value.get(str(index))
    if isinstance(value, list) and isinstance(index, int) and not isinstance(index, bool):
        return value[index] if -len(value) <= index < len(value) else None
    return None


def _unquote(token: str) -> str:
    body = token[1:-1]
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)),
        body,
    )


def execute(text: str, bind: dict[str, Any], db: Collections) -> Result:
    """Parse and run ``text``; raise :class:`AqlError` as ArangoDB would."""
    if not isinstance(text, str) or not text.strip():
        raise AqlError(400, 1502, "query is empty")
    compiler = _Compiler(text, bind, db)
    ops = compiler.query()
    result = Result()
    rows: Iterator[dict[str, Any]] = iter([{}])
    for op in ops:
        rows = op(rows, result)
    for _ in rows:  # a query ending in a modification returns nothing, but must run
        pass
    return result

"""A CONTRACT DOUBLE of ArangoDB's HTTP API, for tests only: not ArangoDB, and not a mock of
arangotasks. No ArangoDB server can be installed on our machines, so the ``db`` bridge is tested
against this aiohttp server, which answers exactly the endpoints the bridge uses the way ArangoDB's
documentation describes them (the HTTP API reference's request/response examples), and which
``tests/arangodb/test_double.py`` checks with python-arango's own collection and AQL calls.
Set ``ARANGOTASKS_TEST_ARANGODB_URL`` (with ``_USER``/``_PASSWORD``) to run the same bridge tests
against a real server instead.

Where each behaviour comes from (ArangoDB 3.12 HTTP API documentation):
- Cursors (``/_api/cursor``): POST creates (201; ``result``, ``hasMore``, ``id`` while more batches
  remain, ``count`` when asked, ``extra.stats``/``extra.warnings``, ``cached``), POST or PUT
  ``/_api/cursor/{id}`` reads the next batch (200), DELETE disposes (202); an exhausted or unknown
  cursor is 404 / errorNum 1600 "cursor not found". ``batchSize`` defaults to 1000.
- Documents (``/_api/document/{collection}[/{key}]``): POST inserts one or an array (201 with
  ``waitForSync``, else 202; ``_id``, ``_key``, ``_rev``; array items that fail are inline error
  objects and ``X-Arango-Error-Codes`` counts them), GET/HEAD read (200; 404 / 1202 "document not
  found"), PATCH updates (``keepNull``, ``mergeObjects``; ``_oldRev``), PUT replaces, DELETE
  removes; ``returnNew``/``returnOld``; a duplicate key is 409 / 1210; an illegal key 400 / 1221.
- Collections (``/_api/collection``): list (``result``), create (200; a duplicate name 409 / 1207,
  an illegal name 400 / 1208), read, ``/count``, ``/properties``, PUT ``/truncate``, DELETE (200,
  ``id``); a missing collection is 404 / 1203 "collection or view not found".
- Every error body is ``{"code","error":true,"errorMessage","errorNum"}``; an unknown database is
  404 / 1228 "database not found"; wrong credentials 401 / 11.
- AQL is the small interpreter in ``tests/arangodb/aql.py`` (see its list of what it covers).
"""

import base64
import itertools
import json
import re
from typing import Any

from aiohttp import web

from tests.arangodb.aql import AqlError, Collections, execute

_KEY = re.compile(r"^[A-Za-z0-9_\-:.@()+,=;$!*'%]{1,254}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,255}$")
DATABASES = web.AppKey("databases", dict)


class Failure(Exception):
    def __init__(self, code: int, num: int, message: str) -> None:
        super().__init__(message)
        self.code, self.num, self.message = code, num, message


def _not_found() -> Failure:
    return Failure(404, 1203, "collection or view not found")


class Database(Collections):
    """One database's collections, kept in memory."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}
        self.ids: dict[str, str] = {}
        self._ticks = itertools.count(1000)

    def tick(self) -> str:
        return str(next(self._ticks))

    def rev(self) -> str:
        return "_" + base64.b64encode(next(self._ticks).to_bytes(6, "big")).decode()[:8] + "---"

    def coll(self, name: str) -> dict[str, dict[str, Any]]:
        found = self.collections.get(name)
        if found is None:
            raise _not_found()
        return found

    # --- what the AQL interpreter uses ---------------------------------------------------
    def exists(self, name: str) -> bool:
        return name in self.collections

    def documents(self, name: str) -> list[dict[str, Any]]:
        return [dict(doc) for doc in self.coll(name).values()]

    def insert(self, name: str, doc: dict[str, Any], overwrite: str = "") -> dict[str, Any]:
        coll = self.coll(name)
        if not isinstance(doc, dict):
            raise Failure(400, 1227, "invalid document type")
        key = doc.get("_key")
        if key is None:
            key = self.tick()
        elif not isinstance(key, str) or not _KEY.match(key):
            raise Failure(400, 1221, "illegal document key")
        if key in coll and overwrite in ("", "conflict"):
            raise Failure(
                409,
                1210,
                "unique constraint violated - in index primary of type primary over '_key'; "
                f"conflicting key: {key}",
            )
        body = {k: v for k, v in doc.items() if k not in ("_id", "_key", "_rev")}
        if key in coll and overwrite == "update":
            body = {**{k: v for k, v in coll[key].items() if not k.startswith("_")}, **body}
        new = {"_key": key, "_id": f"{name}/{key}", "_rev": self.rev(), **body}
        coll[key] = new
        return dict(new)

    def modify(
        self, name: str, key: str, body: dict[str, Any], *, replace: bool, keep_null: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        coll = self.coll(name)
        old = coll.get(key)
        if old is None:
            raise Failure(404, 1202, "document not found")
        fields = {k: v for k, v in body.items() if k not in ("_id", "_key", "_rev")}
        if not replace:
            merged = {k: v for k, v in old.items() if not k.startswith("_")}
            merged.update(fields)
            fields = merged if keep_null else {k: v for k, v in merged.items() if v is not None}
        new = {"_key": key, "_id": f"{name}/{key}", "_rev": self.rev(), **fields}
        coll[key] = new
        return dict(old), dict(new)

    def remove(self, name: str, key: str) -> dict[str, Any]:
        coll = self.coll(name)
        old = coll.pop(key, None)
        if old is None:
            raise Failure(404, 1202, "document not found")
        return old


def _error(code: int, num: int, message: str) -> web.Response:
    body = {"code": code, "error": True, "errorMessage": message, "errorNum": num}
    return web.json_response(body, status=code)


def _info(db: Database, name: str) -> dict[str, Any]:
    return {
        "id": db.ids[name],
        "name": name,
        "status": 3,
        "type": 2,
        "isSystem": name.startswith("_"),
        "globallyUniqueId": f"h{db.ids[name]}",
    }


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() in ("true", "1", "yes")


class Double:
    """The double's state: databases, credentials, open cursors, and a request log."""

    def __init__(self, user: str = "root", password: str = "", databases: tuple[str, ...] = ()):
        self.user, self.password = user, password
        self.databases = {name: Database(name) for name in ("_system", *databases)}
        self.cursors: dict[str, tuple[list[Any], dict[str, Any]]] = {}
        self.log: list[tuple[str, str]] = []  # (method, path) of every request
        self._cursor_ids = itertools.count(7000)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        for prefix in ("", "/_db/{database}"):
            app.router.add_route("*", prefix + "/_api/{tail:.*}", self._dispatch)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.log.append((request.method, request.path))
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _error(401, 11, "not authorized to execute this request")
        try:
            return await handler(request)
        except Failure as exc:
            if request.method == "HEAD":
                return web.Response(status=exc.code)
            return _error(exc.code, exc.num, exc.message)
        except AqlError as exc:
            return _error(exc.code, exc.num, exc.message)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        db = self.databases.get(request.match_info.get("database", "_system"))
        if db is None:
            raise Failure(404, 1228, "database not found")
        parts = request.match_info["tail"].split("/")
        area, rest = parts[0], parts[1:]
        body: Any = None
        if request.can_read_body:
            try:
                body = json.loads(await request.read() or b"null")
            except ValueError:
                raise Failure(400, 600, "VPackError error: Expecting value") from None
        if area == "cursor":
            return self._cursor(request, db, rest, body)
        if area == "document" and rest:
            return self._document(request, db, rest, body)
        if area == "collection":
            return self._collection(request, db, rest, body)
        if area == "version":
            return web.json_response({"server": "arango", "version": "3.12.4", "license": "x"})
        raise Failure(404, 404, "unknown path")

    # --- cursors -------------------------------------------------------------------------
    def _cursor(self, request: web.Request, db: Database, rest: list[str], body: Any):
        if not rest and request.method == "POST":
            if not isinstance(body, dict):
                raise Failure(400, 600, "expecting an object")
            result = execute(body.get("query"), body.get("bindVars") or {}, db)
            stats = {
                "writesExecuted": result.writes_executed,
                "writesIgnored": 0,
                "scannedFull": result.scanned,
                "scannedIndex": 0,
                "filtered": result.filtered,
                "httpRequests": 0,
                "executionTime": 0.0001,
                "peakMemoryUsage": 0,
            }
            extra = {"warnings": [], "stats": stats}
            count = len(result.rows) if body.get("count") else None
            batch = int(body.get("batchSize") or 1000)
            return self._batch(result.rows, batch, count, extra, None, 201)
        if len(rest) == 1 and request.method in ("POST", "PUT"):
            state = self.cursors.pop(rest[0], None)
            if state is None:
                raise Failure(404, 1600, "cursor not found")
            rows, meta = state
            return self._batch(rows, meta["batch"], meta["count"], meta["extra"], rest[0], 200)
        if len(rest) == 1 and request.method == "DELETE":
            if self.cursors.pop(rest[0], None) is None:
                raise Failure(404, 1600, "cursor not found")
            return web.json_response({"id": rest[0], "error": False, "code": 202}, status=202)
        raise Failure(405, 405, "method not supported")

    def _batch(self, rows, batch, count, extra, cursor_id, status) -> web.Response:
        out: dict[str, Any] = {"result": rows[:batch], "hasMore": len(rows) > batch}
        if len(rows) > batch:
            cursor_id = cursor_id or str(next(self._cursor_ids))
            self.cursors[cursor_id] = (
                rows[batch:],
                {"batch": batch, "count": count, "extra": extra},
            )
            out["id"] = cursor_id
        if count is not None:
            out["count"] = count
        out.update({"extra": extra, "cached": False, "error": False, "code": status})
        return web.json_response(out, status=status)

    # --- documents -----------------------------------------------------------------------
    def _document(self, request: web.Request, db: Database, rest: list[str], body: Any):
        name = rest[0]
        db.coll(name)
        sync = _flag(request, "waitForSync")
        if len(rest) == 1 and request.method == "POST":
            mode = request.query.get("overwriteMode") or (
                "replace" if _flag(request, "overwrite") else ""
            )
            if isinstance(body, list):
                out, errors = [], {}
                for doc in body:
                    try:
                        out.append(self._written(request, db.insert(name, doc, mode), None))
                    except Failure as exc:
                        out.append(
                            {"error": True, "errorNum": exc.num, "errorMessage": exc.message}
                        )
                        errors[str(exc.num)] = errors.get(str(exc.num), 0) + 1
                headers = {"X-Arango-Error-Codes": json.dumps(errors)} if errors else {}
                return web.json_response(out, status=202, headers=headers)
            new = db.insert(name, body, mode)
            return web.json_response(self._written(request, new, None), status=201 if sync else 202)
        if len(rest) != 2:
            raise Failure(400, 400, "expecting a document handle")
        key = rest[1]
        if request.method in ("GET", "HEAD"):
            doc = db.coll(name).get(key)
            if doc is None:
                raise Failure(404, 1202, "document not found")
            if request.method == "HEAD":
                return web.Response(status=200, headers={"Etag": f'"{doc["_rev"]}"'})
            return web.json_response(doc, headers={"Etag": f'"{doc["_rev"]}"'})
        if request.method in ("PATCH", "PUT"):
            if not isinstance(body, dict):
                raise Failure(400, 1227, "invalid document type")
            old, new = db.modify(
                name,
                key,
                body,
                replace=request.method == "PUT",
                keep_null=_flag(request, "keepNull", True),
            )
            out = self._written(request, new, old)
            out["_oldRev"] = old["_rev"]
            return web.json_response(out, status=201 if sync else 202)
        if request.method == "DELETE":
            old = db.remove(name, key)
            meta = {"_id": old["_id"], "_key": old["_key"], "_rev": old["_rev"]}
            if _flag(request, "returnOld"):
                meta["old"] = old
            return web.json_response(meta, status=200 if sync else 202)
        raise Failure(405, 405, "method not supported")

    @staticmethod
    def _written(request: web.Request, new: dict[str, Any], old: dict[str, Any] | None):
        if _flag(request, "silent"):
            return {}
        meta: dict[str, Any] = {"_id": new["_id"], "_key": new["_key"], "_rev": new["_rev"]}
        if _flag(request, "returnNew"):
            meta["new"] = new
        if old is not None and _flag(request, "returnOld"):
            meta["old"] = old
        return meta

    # --- collections ---------------------------------------------------------------------
    def _collection(self, request: web.Request, db: Database, rest: list[str], body: Any):
        ok = {"error": False, "code": 200}
        if not rest or rest == [""]:
            if request.method == "GET":
                names = [
                    n
                    for n in db.collections
                    if not (n.startswith("_") and _flag(request, "excludeSystem"))
                ]
                return web.json_response({**ok, "result": [_info(db, n) for n in names]})
            if request.method == "POST":
                name = body.get("name") if isinstance(body, dict) else None
                if not isinstance(name, str) or not _NAME.match(name):
                    raise Failure(400, 1208, "illegal name")
                if name in db.collections:
                    raise Failure(409, 1207, "duplicate name")
                db.collections[name] = {}
                db.ids[name] = db.tick()
                props = {
                    "waitForSync": False,
                    "keyOptions": {"type": "traditional", "allowUserKeys": True, "lastValue": 0},
                    "schema": None,
                    "computedValues": None,
                    "cacheEnabled": False,
                    "syncByRevision": True,
                    "writeConcern": 1,
                    "replicationFactor": 1,
                    "numberOfShards": 1,
                }
                return web.json_response({**ok, **_info(db, name), **props})
            raise Failure(405, 405, "method not supported")
        name = rest[0]
        db.coll(name)
        info = _info(db, name)
        what = rest[1] if len(rest) > 1 else ""
        if request.method == "DELETE" and not what:
            del db.collections[name]
            return web.json_response({**ok, "id": db.ids.pop(name)})
        if request.method == "GET" and what in ("", "properties"):
            return web.json_response({**ok, **info, **({"waitForSync": False} if what else {})})
        if request.method == "GET" and what == "count":
            return web.json_response({**ok, **info, "count": len(db.collections[name])})
        if request.method == "PUT" and what == "truncate":
            db.collections[name].clear()
            return web.json_response({**ok, **info})
        raise Failure(405, 405, "method not supported")

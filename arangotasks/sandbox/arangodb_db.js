/*
 * ArangoDB's JavaScript database API for task commands, as an HTTP client of a real ArangoDB
 * (modelled on arangosh's js/client/modules/@arangodb/arango-database.js, arango-collection.js
 * and arango-query-cursor.js). Evaluated in a run's context on first use of
 * require('@arangodb').db / .aql / .query / .ArangoError; the value of this script is a factory:
 *
 *   factory(call, databaseName) -> {db, aql, query, ArangoError}
 *
 * call(method, path, bodyJson) is the synchronous host call: the server sends the request to the
 * ArangoDB configured for the task's database (credentials never enter the sandbox), records it in
 * the run's requests and returns {status, body} (body: the response text). Paths are relative to
 * the database (/_api/...). Simple queries (byExample and friends) are AQL, as ArangoDB 4.0 has
 * no simple-query API. Not provided: JavaScript transactions, Foxx, graphs, views, indexes, users.
 */
0, function (call, databaseName) {
  "use strict";
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const enc = encodeURIComponent;
  // Property names that JavaScript itself probes (JSON.stringify, await, printing): never treated
  // as collection names, so that they cost no request.
  const probes = new Set(["toJSON", "then", "constructor", "toString", "valueOf", "inspect",
    "prototype", "__proto__", "length", "name"]);

  class ArangoError extends Error {
    constructor(body) {
      super(body.errorMessage);
      this.name = "ArangoError";
      this.error = true;
      this.code = body.code;
      this.errorNum = body.errorNum;
      this.errorMessage = body.errorMessage;
    }
    toString() {
      return "ArangoError " + this.errorNum + ": " + this.errorMessage;
    }
  }

  function request(method, path, body) {
    const res = call(method, path, body === undefined ? null : stringify(body));
    let data = null;
    if (res.body) {
      try {
        data = parse(res.body);
      } catch (e) {
        data = null;
      }
    }
    if (res.status >= 400 || (data && data.error === true)) {
      if (data && typeof data.errorNum === "number") throw new ArangoError(data);
      throw new ArangoError({
        code: res.status,
        errorNum: res.status,
        errorMessage: "ArangoDB answered HTTP " + res.status,
      });
    }
    return data;
  }

  function qs(params) {
    const parts = [];
    for (const key of Object.keys(params)) {
      const value = params[key];
      if (value !== undefined && value !== null) parts.push(key + "=" + enc(String(value)));
    }
    return parts.length ? "?" + parts.join("&") : "";
  }

  // --- cursors ---------------------------------------------------------------------------
  class ArangoQueryCursor {
    constructor(data) {
      this._documents = data.result || [];
      this._pos = 0;
      this._hasMore = Boolean(data.hasMore);
      this._id = data.id;
      this._count = data.count;
      this._extra = data.extra;
      this._cached = Boolean(data.cached);
    }
    hasNext() {
      while (this._pos >= this._documents.length && this._hasMore) {
        const data = request("POST", "/_api/cursor/" + enc(this._id));
        this._documents = data.result || [];
        this._pos = 0;
        this._hasMore = Boolean(data.hasMore);
        if (data.extra) this._extra = data.extra;
      }
      return this._pos < this._documents.length;
    }
    next() {
      return this.hasNext() ? this._documents[this._pos++] : undefined;
    }
    toArray() {
      const out = [];
      while (this.hasNext()) out.push(this._documents[this._pos++]);
      return out;
    }
    count() {
      return this._count;
    }
    getExtra() {
      return this._extra;
    }
    getCached() {
      return this._cached;
    }
    dispose() {
      if (this._hasMore && this._id !== undefined) {
        this._hasMore = false;
        try {
          request("DELETE", "/_api/cursor/" + enc(this._id));
        } catch (e) {
          // already gone: the server deletes a cursor when its last batch is read or it expires
        }
      }
      this._documents = [];
      this._pos = 0;
    }
    toString() {
      return "[object ArangoQueryCursor" + (this._id ? " " + this._id : "") + "]";
    }
  }

  function runQuery(payload) {
    return new ArangoQueryCursor(request("POST", "/_api/cursor", payload));
  }

  // --- the aql template tag --------------------------------------------------------------
  function isQuery(value) {
    return value !== null && typeof value === "object" && typeof value.query === "string" &&
      value.bindVars !== null && typeof value.bindVars === "object" && value._aql === true;
  }

  function aql(strings, ...args) {
    const bindVars = {};
    const seen = [];
    let query = strings[0];
    let n = 0;
    function bind(value, isCollection) {
      for (const [v, name, c] of seen) if (v === value && c === isCollection) return name;
      const name = "value" + n++;
      seen.push([value, name, isCollection]);
      if (isCollection) bindVars["@" + name] = value.name();
      else bindVars[name] = value;
      return (isCollection ? "@@" : "@") + name;
    }
    for (let i = 0; i < args.length; i++) {
      const value = args[i];
      if (value !== null && typeof value === "object" && typeof value.toAQL === "function") {
        query += value.toAQL();
      } else if (isQuery(value)) {
        // A nested query: its bind parameters are renamed into this one's.
        let text = value.query;
        const names = Object.keys(value.bindVars).sort((a, b) => b.length - a.length);
        const renamed = {};
        for (const key of names) {
          const isCollection = key.charAt(0) === "@";
          const fresh = "value" + n++;
          renamed[key] = (isCollection ? "@@" : "@") + fresh;
          bindVars[(isCollection ? "@" : "") + fresh] = value.bindVars[key];
        }
        text = text.replace(/@(@?[A-Za-z0-9_]+)/g, (m, key) => renamed[key] || m);
        query += text;
      } else if (value instanceof ArangoCollection) {
        query += bind(value, true);
      } else if (value === undefined) {
        // as arangojs: an undefined value leaves nothing in the query
      } else {
        query += bind(value, false);
      }
      query += strings[i + 1];
    }
    return { query, bindVars, _aql: true };
  }
  aql.literal = function (value) {
    if (value !== null && typeof value === "object" && typeof value.toAQL === "function") {
      return value;
    }
    return { toAQL: () => (value === undefined ? "" : String(value)) };
  };
  aql.join = function (values, sep) {
    const parts = values.filter((v) => v !== undefined);
    const strings = [""];
    for (let i = 1; i < parts.length; i++) strings.push(sep === undefined ? " " : sep);
    strings.push("");
    return aql(strings, ...parts);
  };

  // --- simple queries, as AQL ------------------------------------------------------------
  function exampleFilter(example, bindVars) {
    const conditions = [];
    let n = 0;
    for (const key of Object.keys(example)) {
      const path = key.split(".").map((part) => {
        const name = "attr" + n++;
        bindVars[name] = part;
        return "[@" + name + "]";
      });
      const value = "value" + n++;
      bindVars[value] = example[key];
      conditions.push("doc" + path.join("") + " == @" + value);
    }
    return conditions.length ? " FILTER " + conditions.join(" && ") : "";
  }

  function exampleOf(args) {
    if (args.length === 1 && args[0] !== null && typeof args[0] === "object") return args[0];
    const example = {};
    for (let i = 0; i + 1 < args.length; i += 2) example[args[i]] = args[i + 1];
    return example;
  }

  class SimpleQuery {
    constructor(collection, example) {
      this._collection = collection;
      this._example = example;
      this._skip = 0;
      this._limit = null;
      this._cursor = null;
    }
    skip(n) {
      this._skip = n;
      return this;
    }
    limit(n) {
      this._limit = n;
      return this;
    }
    execute() {
      if (!this._cursor) {
        const bindVars = { "@collection": this._collection.name() };
        let query = "FOR doc IN @@collection";
        query += exampleFilter(this._example || {}, bindVars);
        if (this._skip || this._limit !== null) {
          query += " LIMIT @skip, @limit";
          bindVars.skip = this._skip;
          bindVars.limit = this._limit;
        }
        this._cursor = runQuery({ query: query + " RETURN doc", bindVars, count: true });
      }
      return this._cursor;
    }
    hasNext() {
      return this.execute().hasNext();
    }
    next() {
      return this.execute().next();
    }
    toArray() {
      return this.execute().toArray();
    }
    count() {
      return this.execute().count();
    }
    dispose() {
      if (this._cursor) this._cursor.dispose();
    }
  }

  // --- collections -----------------------------------------------------------------------
  function handleOf(collection, selector) {
    let key = selector;
    if (selector !== null && typeof selector === "object") {
      key = selector._key !== undefined ? selector._key : selector._id;
    }
    if (typeof key !== "string" && typeof key !== "number") {
      throw new ArangoError({ code: 400, errorNum: 1205, errorMessage: "illegal document identifier" });
    }
    key = String(key);
    const slash = key.indexOf("/");
    if (slash >= 0) {
      if (key.slice(0, slash) !== collection) {
        throw new ArangoError({ code: 400, errorNum: 1209, errorMessage: "cross collection request not allowed" });
      }
      key = key.slice(slash + 1);
    }
    return "/_api/document/" + enc(collection) + "/" + enc(key);
  }

  const writeOptions = ["waitForSync", "returnNew", "returnOld", "silent", "keepNull",
    "mergeObjects", "overwrite", "overwriteMode", "ignoreRevs"];

  function optionsQs(options) {
    const picked = {};
    if (options && typeof options === "object") {
      for (const key of writeOptions) if (options[key] !== undefined) picked[key] = options[key];
    }
    return qs(picked);
  }

  class ArangoCollection {
    constructor(name) {
      this._name = name;
    }
    name() {
      return this._name;
    }
    type() {
      return request("GET", "/_api/collection/" + enc(this._name)).type;
    }
    properties() {
      return request("GET", "/_api/collection/" + enc(this._name) + "/properties");
    }
    count() {
      return request("GET", "/_api/collection/" + enc(this._name) + "/count").count;
    }
    save(data, options) {
      return request("POST", "/_api/document/" + enc(this._name) + optionsQs(options), data);
    }
    insert(data, options) {
      return this.save(data, options);
    }
    document(selector) {
      return request("GET", handleOf(this._name, selector));
    }
    exists(selector) {
      try {
        const doc = request("GET", handleOf(this._name, selector));
        return { _id: doc._id, _key: doc._key, _rev: doc._rev };
      } catch (e) {
        if (e instanceof ArangoError && e.errorNum === 1202) return false;
        throw e;
      }
    }
    update(selector, data, options) {
      if (typeof options === "boolean") options = { overwrite: options };
      return request("PATCH", handleOf(this._name, selector) + optionsQs(options), data);
    }
    replace(selector, data, options) {
      if (typeof options === "boolean") options = { overwrite: options };
      return request("PUT", handleOf(this._name, selector) + optionsQs(options), data);
    }
    remove(selector, options) {
      if (typeof options === "boolean") options = { overwrite: options };
      return request("DELETE", handleOf(this._name, selector) + optionsQs(options));
    }
    all() {
      return new SimpleQuery(this, null);
    }
    toArray() {
      return this.all().toArray();
    }
    byExample(...args) {
      return new SimpleQuery(this, exampleOf(args));
    }
    firstExample(...args) {
      const docs = new SimpleQuery(this, exampleOf(args)).limit(1).toArray();
      return docs.length ? docs[0] : null;
    }
    updateByExample(example, newValue, keepNull, waitForSync, limit) {
      let options = { keepNull, waitForSync, limit };
      if (keepNull !== null && typeof keepNull === "object") options = keepNull;
      return this._byExample(example, limit === undefined ? options.limit : limit,
        " UPDATE doc WITH @newValue IN @@collection OPTIONS " +
        "{keepNull: @keepNull, mergeObjects: @mergeObjects, waitForSync: @waitForSync}",
        { newValue, keepNull: options.keepNull !== false,
          mergeObjects: options.mergeObjects !== false, waitForSync: Boolean(options.waitForSync) });
    }
    replaceByExample(example, newValue, waitForSync, limit) {
      let options = { waitForSync, limit };
      if (waitForSync !== null && typeof waitForSync === "object") options = waitForSync;
      return this._byExample(example, options.limit,
        " REPLACE doc WITH @newValue IN @@collection OPTIONS {waitForSync: @waitForSync}",
        { newValue, waitForSync: Boolean(options.waitForSync) });
    }
    removeByExample(example, waitForSync, limit) {
      let options = { waitForSync, limit };
      if (waitForSync !== null && typeof waitForSync === "object") options = waitForSync;
      return this._byExample(example, options.limit,
        " REMOVE doc IN @@collection OPTIONS {waitForSync: @waitForSync}",
        { waitForSync: Boolean(options.waitForSync) });
    }
    _byExample(example, limit, operation, extra) {
      const bindVars = Object.assign({ "@collection": this._name }, extra);
      let query = "FOR doc IN @@collection" + exampleFilter(example || {}, bindVars);
      if (typeof limit === "number" && limit > 0) {
        query += " LIMIT @limit";
        bindVars.limit = limit;
      }
      const cursor = runQuery({ query: query + operation, bindVars });
      const stats = (cursor.getExtra() || {}).stats || {};
      return stats.writesExecuted || 0;
    }
    truncate() {
      request("PUT", "/_api/collection/" + enc(this._name) + "/truncate");
    }
    drop() {
      request("DELETE", "/_api/collection/" + enc(this._name));
      forget(this._name);
    }
    toString() {
      return "[ArangoCollection \"" + this._name + "\"]";
    }
    toJSON() {
      return { name: this._name };
    }
  }

  // --- the database ----------------------------------------------------------------------
  const known = new Map(); // collections looked up in this run

  function forget(name) {
    known.delete(name);
  }

  function lookup(name) {
    if (known.has(name)) return known.get(name);
    try {
      request("GET", "/_api/collection/" + enc(name));
    } catch (e) {
      if (e instanceof ArangoError && e.errorNum === 1203) return null;
      throw e;
    }
    const collection = new ArangoCollection(name);
    known.set(name, collection);
    return collection;
  }

  function splitHandle(handle) {
    if (handle !== null && typeof handle === "object") handle = handle._id;
    const text = String(handle);
    const slash = text.indexOf("/");
    if (slash <= 0) {
      throw new ArangoError({ code: 400, errorNum: 1205, errorMessage: "illegal document identifier" });
    }
    return [new ArangoCollection(text.slice(0, slash)), text];
  }

  function cursorPayload(query, bindVars, cursorOptions, options) {
    let payload;
    let extra = cursorOptions;
    if (query !== null && typeof query === "object") {
      payload = { query: query.query, bindVars: query.bindVars };
      for (const key of ["count", "batchSize", "ttl", "options", "cache", "memoryLimit"]) {
        if (query[key] !== undefined) payload[key] = query[key];
      }
      extra = bindVars; // db._query(aql`...`, options)
      options = cursorOptions;
    } else {
      payload = { query, bindVars: bindVars || undefined };
    }
    const rest = {};
    if (extra && typeof extra === "object") {
      for (const key of Object.keys(extra)) {
        if (["count", "batchSize", "ttl", "cache", "memoryLimit"].includes(key)) {
          payload[key] = extra[key];
        } else rest[key] = extra[key];
      }
    }
    if (options && typeof options === "object") Object.assign(rest, options);
    if (Object.keys(rest).length) payload.options = Object.assign({}, payload.options, rest);
    return payload;
  }

  const base = {
    _name: () => databaseName,
    _query(query, bindVars, cursorOptions, options) {
      return runQuery(cursorPayload(query, bindVars, cursorOptions, options));
    },
    _collection(name) {
      return lookup(String(name));
    },
    _collections() {
      const data = request("GET", "/_api/collection");
      return (data.result || []).map((info) => {
        const collection = new ArangoCollection(info.name);
        known.set(info.name, collection);
        return collection;
      });
    },
    _create(name, properties, type) {
      const body = Object.assign({}, properties, { name: String(name) });
      if (type === "edge" || type === 3) body.type = 3;
      else if (body.type === undefined) body.type = 2;
      request("POST", "/_api/collection", body);
      return lookup(String(name));
    },
    _createDocumentCollection(name, properties) {
      return base._create(name, properties, 2);
    },
    _createEdgeCollection(name, properties) {
      return base._create(name, properties, 3);
    },
    _drop(name) {
      const text = name instanceof ArangoCollection ? name.name() : String(name);
      try {
        request("DELETE", "/_api/collection/" + enc(text));
      } catch (e) {
        if (!(e instanceof ArangoError && e.errorNum === 1203)) throw e;
      }
      forget(text);
    },
    _truncate(name) {
      const text = name instanceof ArangoCollection ? name.name() : String(name);
      request("PUT", "/_api/collection/" + enc(text) + "/truncate");
    },
    _document(handle) {
      const [collection, text] = splitHandle(handle);
      return collection.document(text);
    },
    _exists(handle) {
      const [collection, text] = splitHandle(handle);
      return collection.exists(text);
    },
    _update(handle, data, options) {
      const [collection, text] = splitHandle(handle);
      return collection.update(text, data, options);
    },
    _replace(handle, data, options) {
      const [collection, text] = splitHandle(handle);
      return collection.replace(text, data, options);
    },
    _remove(handle, options) {
      const [collection, text] = splitHandle(handle);
      return collection.remove(text, options);
    },
    _executeTransaction() {
      throw new ArangoError({ code: 501, errorNum: 9, errorMessage:
        "JavaScript transactions are not available in arangotasks (ArangoDB 4.0 has none)" });
    },
    _useDatabase() {
      throw new ArangoError({ code: 501, errorNum: 9, errorMessage:
        "db._useDatabase is not available in arangotasks: a task uses its own database" });
    },
    toString: () => "[object ArangoDatabase \"" + databaseName + "\"]",
    toJSON: () => ({ name: databaseName }),
  };

  // db.name and db[name] find collections, as arangosh's db object does.
  const db = new Proxy(base, {
    get(target, property) {
      if (typeof property !== "string" || property in target || probes.has(property) ||
          property.charAt(0) === "_") {
        return target[property];
      }
      return lookup(property) || undefined;
    },
    has(target, property) {
      if (typeof property !== "string" || property in target) return property in target;
      return lookup(property) !== null;
    },
    set() {
      return false;
    },
  });

  function query(strings, ...args) {
    if (!Array.isArray(strings)) {
      const options = strings;
      return (inner, ...rest) => db._query(aql(inner, ...rest), options);
    }
    return db._query(aql(strings, ...args));
  }

  return { db, aql, query, ArangoError, ArangoCollection, ArangoQueryCursor };
}

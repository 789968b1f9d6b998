/*
 * arangotasks sandbox host modules: the task APIs that reach outside the sandbox. Compiled in a
 * run's context by prelude_output.js on the first require of one of them or the first fetch.
 *
 * Every call goes through `host(kind, argsJson, outputJson)`: in host mode the worker's Python
 * function, which sends {"call": kind, "args": ..., "output": ...} to the server and blocks for
 * the reply ({"value": ...} or {"error": {name, message}, "fatal": type}); on the fast path the
 * stand-in of prelude.js, which throws (the run is then made again in host mode). The server
 * carries the call out through its handler registered under `kind` (arangotasks/sandbox/host.py);
 * adding a host API is a handler there and a module here (add its name to hostModuleNames in
 * prelude_output.js).
 *
 * The source is one expression, a function called with
 *   builtins   prelude.js's captured builtins (see its list)
 *   host       the host function (or the stand-in)
 *   lines      the run's output lines (prelude_output.js's array): each call hands the server
 *              the lines printed since the last one, so that a worker killed later (CPU limit
 *              in host mode) loses little
 *   evaluate   the global eval, captured before the command ran
 * It returns {modules: {name: module}, fetch, arangodb}.
 *
 * Modules:
 *   @arangodb/request   ArangoDB's request module: request(options), request.get/post/put/patch/
 *                       delete/head(url, options) -> Response {status, statusCode, message,
 *                       headers, body, json}; see the README's "Calling out" for what differs.
 *   @arangotasks/secrets  get(name) -> string (throws naming an absent secret), has(name) -> bool
 *   @arangodb's and internal's db, aql, query, ArangoError (through prelude_output.js):
 *                       arangotasks/sandbox/arangodb_db.js over the arangodb.* host calls.
 * Globals (through prelude.js):
 *   fetch(url, init)    a WHATWG subset: a Promise of {status, statusText, ok, url, redirected,
 *                       headers: {get, has}, text(), json()}
 */
0, function (builtins, host, lines, evaluate) {
  "use strict";
  const stringify = builtins[0];
  const parse = builtins[1];
  const ErrorCtor = builtins[4];
  const toStr = builtins[5];
  const PromiseCtor = builtins[12];
  const promiseResolve = builtins[13];
  const apply = builtins[2];

  let sent = 0; // output lines already handed over
  function unsent() {
    let text = "[";
    for (let i = sent; i < lines.length; i++) {
      if (i > sent) text += ",";
      text += stringify(lines[i]);
    }
    sent = lines.length;
    return text + "]";
  }

  // One host call: its value, or a thrown Error with the reply's name and message.
  function call(kind, args) {
    const reply = parse(host(kind, stringify(args), unsent()));
    if (reply.error) {
      const error = new ErrorCtor(toStr(reply.error.message));
      if (reply.error.name && reply.error.name !== "Error") error.name = toStr(reply.error.name);
      throw error;
    }
    return reply.value;
  }

  // ---- query strings, as ArangoDB's request module (the qs module, RFC 3986 strict) -----------
  function encode(text) {
    return encodeURIComponent(text).replace(/[!'()*]/g, function (c) {
      return "%" + c.charCodeAt(0).toString(16);
    });
  }
  function qsPairs(prefix, value, pairs) {
    if (value === undefined || typeof value === "function") return;
    if (value === null) {
      pairs.push(encode(prefix) + "=");
    } else if (value instanceof Date) {
      pairs.push(encode(prefix) + "=" + encode(value.toISOString()));
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) qsPairs(prefix + "[" + i + "]", value[i], pairs);
    } else if (typeof value === "object") {
      for (const key of Object.keys(value)) qsPairs(prefix + "[" + key + "]", value[key], pairs);
    } else {
      pairs.push(encode(prefix) + "=" + encode(toStr(value)));
    }
  }
  function querystring(query) {
    if (!query) return "";
    if (typeof query === "string") return query.charAt(0) === "?" ? query.slice(1) : query;
    const pairs = [];
    for (const key of Object.keys(query)) qsPairs(key, query[key], pairs);
    return pairs.join("&");
  }

  // ---- @arangodb/request -----------------------------------------------------------------------
  class Response {
    constructor(raw, json) {
      this.status = this.statusCode = raw.status;
      this.message = raw.message;
      this.headers = raw.headers;
      this.body = raw.body;
      if (this.body && json !== false) {
        try {
          this.json = parse(this.body);
        } catch (e) {
          this.json = undefined;
        }
      }
    }
    throw(msg) {
      if (this.status >= 400) {
        const error = new ErrorCtor(msg || this.message);
        error.statusCode = error.status = this.status;
        error.details = this;
        throw error;
      }
    }
    toString() {
      return "[Response " + this.status + " " + this.message + " " +
        (this.body ? this.body.length + " bytes" : "empty") + "]";
    }
  }

  function request(req) {
    if (typeof req === "string") req = { url: req, method: "GET" };
    if (req === null || typeof req !== "object") throw new TypeError("request options must be an object");
    const url = req.url || req.uri;
    if (!url) throw new ErrorCtor("Request URL must not be empty.");
    if (typeof url !== "string") throw new TypeError("request: the url must be a string");
    const query = querystring(req.qs);
    let contentType;
    let body = req.body;
    if (req.json) {
      body = stringify(body);
      contentType = "application/json";
    } else if (typeof body === "string") {
      contentType = "text/plain; charset=utf-8";
    } else if (body !== undefined && body !== null && typeof body === "object") {
      body = stringify(body);
      contentType = "application/json";
    } else if (!body) {
      body = undefined;
      if (req.form) {
        contentType = "application/x-www-form-urlencoded";
        body = typeof req.form === "string" ? req.form : querystring(req.form);
      }
    } else {
      body = toStr(body);
    }
    const headers = {};
    if (contentType) headers["content-type"] = contentType;
    if (req.headers) {
      for (const name of Object.keys(req.headers)) headers[name.toLowerCase()] = toStr(req.headers[name]);
    }
    const args = {
      method: toStr(req.method || "get").toUpperCase(),
      url,
      query,
      headers,
      body: body === undefined ? null : body,
      returnBodyOnError: req.returnBodyOnError !== false,
      followRedirect: req.followRedirect !== false,
      maxRedirects: req.maxRedirects == null ? 10 : Number(req.maxRedirects),
    };
    if (req.timeout != null) args.timeout = Number(req.timeout);
    if (req.auth != null) {
      const auth = req.auth;
      if (auth.jwt != null || auth.bearer != null) {
        args.bearer = toStr(auth.jwt != null ? auth.jwt : auth.bearer);
      } else if (auth.username != null) {
        args.username = toStr(auth.username);
        args.password = auth.password == null ? "" : toStr(auth.password);
      }
    }
    return new Response(call("http.request", args), req.json);
  }
  request.request = request;
  request.Response = Response;
  const methods = ["DELETE", "GET", "HEAD", "PATCH", "POST", "PUT"];
  for (let i = 0; i < methods.length; i++) {
    const method = methods[i];
    request[method.toLowerCase()] = function (url, options) {
      if (typeof url === "object") {
        options = url;
      } else if (typeof url === "string") {
        options = Object.assign({}, options, { url });
      }
      return request(Object.assign({ method }, options));
    };
  }

  // ---- fetch -----------------------------------------------------------------------------------
  function fetchHeaders(raw) {
    return {
      get(name) {
        const value = raw[toStr(name).toLowerCase()];
        return value === undefined ? null : value;
      },
      has(name) {
        return raw[toStr(name).toLowerCase()] !== undefined;
      },
      forEach(fn) {
        for (const key of Object.keys(raw)) fn(raw[key], key);
      },
    };
  }
  function fetch(resource, init) {
    return new PromiseCtor(function (resolve) {
      init = init || {};
      const headers = {};
      if (init.headers) {
        for (const name of Object.keys(init.headers)) headers[name.toLowerCase()] = toStr(init.headers[name]);
      }
      let body = init.body == null ? null : toStr(init.body);
      if (body !== null && headers["content-type"] === undefined) {
        headers["content-type"] = "text/plain;charset=UTF-8";
      }
      const raw = call("http.request", {
        method: toStr(init.method || "GET").toUpperCase(),
        url: toStr(resource),
        query: "",
        headers,
        body,
        returnBodyOnError: true,
        followRedirect: init.redirect !== "manual" && init.redirect !== "error",
        failOnRedirect: init.redirect === "error",
        maxRedirects: 20,
      });
      const text = raw.body;
      resolve({
        status: raw.status,
        statusText: raw.message,
        ok: raw.status >= 200 && raw.status < 300,
        url: raw.url,
        redirected: raw.redirected,
        headers: fetchHeaders(raw.headers),
        text() {
          return apply(promiseResolve, PromiseCtor, [text]);
        },
        json() {
          return new PromiseCtor(function (done) {
            done(parse(text));
          });
        },
      });
    });
  }

  // ---- @arangotasks/secrets: the task's database's secrets (the server picks the database) ----
  function secretName(name) {
    if (typeof name !== "string") throw new TypeError("a secret's name must be a string");
    return name;
  }
  const secrets = {
    get(name) {
      return call("secrets.get", { name: secretName(name) });
    },
    has(name) {
      return call("secrets.has", { name: secretName(name) });
    },
  };

  // ---- the db bridge (arangodb_db.js, whose source the worker hands over) --------------------
  let arango;
  function arangodb() {
    if (!arango) {
      // Throws the clear "no ArangoDB configured" error when the bridge has none for this run.
      let info;
      try {
        info = call("arangodb.info", null);
      } catch (e) {
        const text = toStr(e.message);
        throw new ErrorCtor(text.indexOf("database access") === 0 ? text :
          "database access (require('@arangodb').db) is not available in arangotasks: " + text);
      }
      const factory = evaluate(host("@arangodb-source", "null", "[]"));
      arango = factory(function (method, path, body) {
        return call("arangodb.request", { method: method, path: path, body: body });
      }, info.database);
    }
    return arango;
  }

  return {
    modules: { "@arangodb/request": request, "@arangotasks/secrets": secrets },
    fetch,
    arangodb,
  };
}

/*
 * arangotasks sandbox prelude: evaluated in every fresh QuickJS context before a task's command.
 *
 * Globals it defines for the command:
 *   print(...values)                 one output line
 *   console.log/info/debug(...)      one output line
 *   console.warn(...)                one output line prefixed "WARN: "
 *   console.error(...)               one output line prefixed "ERROR: "
 *   require('@arangodb'), require('internal')   { print, db } (reading .db throws: no database)
 *   require('console')               the console object
 *   require(anything else)           throws "cannot find module"
 *   setTimeout/setInterval/setImmediate   throw (a command runs to completion; there is no
 *                                    event loop), clearTimeout/clearInterval/clearImmediate: no-ops
 *
 * Output lines are formatted roughly like arangosh: strings as they are, objects and arrays as
 * JSON (a repeated object as "[Circular]"), errors as "Name: message", functions as
 * "[Function: name]", other values with String(); several arguments are joined by one space. They are kept in a
 * bounded buffer (UTF-8 bytes, one byte per newline); the line that crosses the limit is cut and
 * followed by "... output truncated (limit N bytes)", and later output is dropped. There are no
 * calls into Python: the binding refuses them while a time limit is set.
 *
 * The worker drives a run through the frozen global __arangotasks:
 *   compile(command)  new Function("params", command), throwing SyntaxError when it does not compile
 *   start(command, paramsJson, outputLimit)  compile the command and call it with the params
 *   finish()  -> JSON text {ok, result, error, output, truncated} once promise jobs are drained
 *   output()  -> JSON text {output, truncated} (after the engine itself failed)
 * Builtins are captured here so that a command tampering with prototypes or JSON cannot break
 * the reply, and every string reaches Python through JSON.stringify (well-formed, escaped).
 *
 * Errors are described as {type, name, message, stack}. quickjs-ng throws null (or an
 * uninitialised value) when it runs out of memory while building the error, so a thrown null is
 * reported as "InternalError: out of memory"; the worker maps the engine's limit errors to the
 * error types (timeout, memory) and marks stack overflows.
 */
(function (global) {
  "use strict";
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const toStr = String;
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const ErrorCtor = Error;
  const SyntaxErrorCtor = SyntaxError;
  const FunctionCtor = Function;
  const functionSource = Function.prototype.toString;
  const PromiseCtor = Promise;
  const promiseResolve = Promise.resolve;
  const promiseThen = Promise.prototype.then;
  const charCodeAt = String.prototype.charCodeAt;
  const sliceString = String.prototype.slice;
  const toWellFormed = String.prototype.toWellFormed;
  const WeakSetCtor = WeakSet;
  const weakSetHas = WeakSet.prototype.has;
  const weakSetAdd = WeakSet.prototype.add;

  // ---- output ------------------------------------------------------------------------------
  const lines = [];
  let limit = 65536;
  let used = 0;
  let truncated = false;

  let prefixBytes = 0; // UTF-8 size of the prefix fittingPrefix() measured last

  // Length (UTF-16 units) of the longest prefix of s whose UTF-8 form fits in `room` bytes.
  function fittingPrefix(s, room) {
    let bytes = 0;
    let i = 0;
    for (; i < s.length; i++) {
      const c = apply(charCodeAt, s, [i]);
      // s is well-formed: a surrogate is half of a 4-byte character.
      const size = c < 0x80 ? 1 : c < 0x800 || (c >= 0xd800 && c < 0xe000) ? 2 : 3;
      if (bytes + size > room) break;
      bytes += size;
    }
    prefixBytes = bytes;
    return i;
  }

  function emit(text) {
    if (truncated) return;
    const line = apply(toWellFormed, text, []);
    const room = limit - used - 1; // one byte for the newline
    let cut = fittingPrefix(line, room);
    if (room >= 0 && cut === line.length) {
      lines[lines.length] = line;
      used += prefixBytes + 1;
      return;
    }
    const last = cut > 0 ? apply(charCodeAt, line, [cut - 1]) : 0;
    if (last >= 0xd800 && last < 0xdc00) cut -= 1; // do not split a surrogate pair
    if (cut > 0) lines[lines.length] = apply(sliceString, line, [0, cut]);
    lines[lines.length] = "... output truncated (limit " + limit + " bytes)";
    truncated = true;
  }

  function format(value) {
    switch (typeof value) {
      case "string":
        return value;
      case "undefined":
        return "undefined";
      case "function":
        return "[Function" + (value.name ? ": " + toStr(value.name) : "") + "]";
      case "object":
        if (value === null) return "null";
        if (value instanceof ErrorCtor) return safeString(value);
        try {
          const json = stringify(value);
          if (typeof json === "string") return json;
        } catch (e) {
          return lenientJson(value); // cycles, BigInts
        }
        return safeString(value);
      default:
        return safeString(value); // number, boolean, bigint, symbol
    }
  }

  // JSON that shows a repeated object as "[Circular]" and a BigInt as its digits.
  function lenientJson(value) {
    const seen = new WeakSetCtor();
    try {
      return stringify(value, function (key, item) {
        if (typeof item === "bigint") return toStr(item);
        if (typeof item === "object" && item !== null) {
          if (apply(weakSetHas, seen, [item])) return "[Circular]";
          apply(weakSetAdd, seen, [item]);
        }
        return item;
      });
    } catch (e) {
      return safeString(value);
    }
  }

  function safeString(value) {
    try {
      return toStr(value);
    } catch (e) {
      return "[object]";
    }
  }

  function writer(prefix) {
    return function (...values) {
      if (truncated) return; // skip the formatting work too
      let line = prefix;
      for (let i = 0; i < values.length; i++) {
        if (i > 0) line += " ";
        line += format(values[i]);
      }
      emit(line);
    };
  }

  // ---- the command's globals -----------------------------------------------------------------
  const print = writer("");
  const console = {
    log: writer(""),
    info: writer(""),
    debug: writer(""),
    warn: writer("WARN: "),
    error: writer("ERROR: "),
  };

  function databaseModule(name) {
    const module = { print };
    defineProperty(module, "db", {
      enumerable: true,
      get() {
        throw new ErrorCtor(
          "database access (require('" + name + "').db) is not available in arangotasks: " +
            "tasks run in a sandbox without a database"
        );
      },
    });
    return module;
  }
  const modules = {
    "@arangodb": databaseModule("@arangodb"),
    internal: databaseModule("internal"),
    console,
  };

  function require(name) {
    const key = toStr(name);
    if (key === "@arangodb" || key === "internal" || key === "console") return modules[key];
    throw new ErrorCtor(
      "cannot find module '" + key + "' (arangotasks sandbox: only @arangodb, internal and " +
        "console are available)"
    );
  }

  function noTimers(name) {
    return function () {
      throw new ErrorCtor(
        name + " is not available in arangotasks: a command runs to completion without an " +
          "event loop (use a periodic task, or return a Promise)"
      );
    };
  }

  const globals = {
    print,
    console,
    require,
    setTimeout: noTimers("setTimeout"),
    setInterval: noTimers("setInterval"),
    setImmediate: noTimers("setImmediate"),
    clearTimeout() {},
    clearInterval() {},
    clearImmediate() {},
  };
  for (const name in globals) {
    defineProperty(global, name, {
      value: globals[name],
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }

  // ---- the run -------------------------------------------------------------------------------
  const PENDING = 0;
  const DONE = 1;
  const FAILED = 2;
  let started = false;
  let state = DONE;
  let result;
  let failure; // the error as JSON text (see describe)

  function isThenable(value) {
    if (value instanceof PromiseCtor) return true;
    return (
      value !== null &&
      (typeof value === "object" || typeof value === "function") &&
      typeof value.then === "function"
    );
  }

  function field(value) {
    return stringify(safeString(value));
  }

  function describe(type, error) {
    let name = "Error";
    let message;
    let stack = "";
    if (error === null || typeof error === "unknown") {
      name = "InternalError";
      message = "out of memory";
    } else if (error instanceof ErrorCtor) {
      try {
        name = safeString(error.name);
        message = safeString(error.message);
        stack = typeof error.stack === "string" ? error.stack : "";
      } catch (e) {
        message = "(unreadable error)";
      }
    } else {
      message = format(error);
    }
    return (
      '{"type":' + field(type) + ',"name":' + field(name) + ',"message":' + field(message) +
      ',"stack":' + field(stack) + "}"
    );
  }

  function outputFields() {
    let text = '"output":[';
    for (let i = 0; i < lines.length; i++) {
      if (i > 0) text += ",";
      text += stringify(lines[i]);
    }
    return text + '],"truncated":' + (truncated ? "true" : "false");
  }

  function __arangotasks_compile(command) {
    const fn = new FunctionCtor("params", command);
    // new Function concatenates its source: a body like "}); code(); (function(){" closes the
    // function early (and has already run). V8 rejects such a body, so do we.
    const expected = "function anonymous(params\n) {\n" + command + "\n}";
    if (apply(functionSource, fn, []) !== expected) {
      throw new SyntaxErrorCtor("the command closes its function body early");
    }
    return fn;
  }

  function __arangotasks_run(command, paramsJson) {
    const fn = __arangotasks_compile(command);
    return fn(paramsJson === undefined ? undefined : parse(paramsJson));
  }

  function __arangotasks_start(command, paramsJson, outputLimit) {
    // Once per context: a command calling it again could lift its own output limit.
    if (started) throw new ErrorCtor("__arangotasks.start runs once per context");
    started = true;
    limit = outputLimit;
    try {
      const value = __arangotasks_run(command, paramsJson);
      if (isThenable(value)) {
        state = PENDING;
        const settled = apply(promiseResolve, PromiseCtor, [value]);
        apply(promiseThen, settled, [
          function (v) {
            state = DONE;
            result = v;
          },
          function (e) {
            state = FAILED;
            failure = describe("exception", e);
          },
        ]);
      } else {
        result = value;
      }
    } catch (e) {
      state = FAILED;
      failure = describe("exception", e);
    }
  }

  function __arangotasks_finish() {
    if (state === PENDING) {
      state = FAILED;
      failure = describe(
        "exception",
        new ErrorCtor("the returned promise never settled (no pending jobs left)")
      );
    }
    if (state === FAILED) return reply('"ok":false,"error":' + failure);
    let json;
    try {
      json = stringify(result);
    } catch (e) {
      return reply('"ok":false,"error":' + describe("result", e));
    }
    return reply('"ok":true,"result":' + (json === undefined ? "null" : stringify(json)));
  }

  function output() {
    return reply("");
  }

  // The reply to the worker: a JSON object with the given fields and the output.
  function reply(fields) {
    const text = "{" + fields + (fields ? "," : "") + outputFields() + "}";
    // A concatenation is a rope string, which the binding cannot convert: slice flattens it.
    return apply(sliceString, text, [0]);
  }

  defineProperty(global, "__arangotasks", {
    value: freeze({
      compile: __arangotasks_compile,
      start: __arangotasks_start,
      finish: __arangotasks_finish,
      output,
    }),
    writable: false,
    configurable: false,
    enumerable: false,
  });
})(globalThis);

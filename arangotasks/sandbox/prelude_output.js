/*
 * arangotasks sandbox run machinery that not every run needs: compiled in a run's context by
 * prelude.js on first use, that is when the command first calls print, console.*, require or a
 * timer, returns a thenable, or fails. A plain run that does none of these never compiles it.
 *
 * The source is one expression, a function (after "0, ": a source starting with "(" costs QuickJS
 * a second scan), evaluated by prelude.js and called with
 *   builtins   the builtins prelude.js captured before the command ran (see its list)
 *   limit      the output limit in bytes
 *   print, console   prelude.js's globals (the modules hand out these very objects)
 *   serialize  prelude.js's: the reply fields for a run that returned a value
 *   host       the host function in host mode, else undefined (the fast path)
 *   evaluate   the global eval
 * A host call (the first require of a module of prelude_host.js, or fetch) on the fast path sets
 * "host": true in the reply and throws: the worker runs the command again in host mode. In host
 * mode the first one compiles prelude_host.js, whose source the host function hands over.
 * It returns {write, require, fetch, timer, await, fail, describe, limit, preload,
 * __arangotasks_outcome, output}.
 *
 * Output lines are formatted roughly like arangosh: strings as they are, objects and arrays as
 * JSON (a repeated object as "[Circular]"), errors as "Name: message", functions as
 * "[Function: name]", other values with String(); several arguments are joined by one space. They are kept in a
 * bounded buffer (UTF-8 bytes, one byte per newline); the line that crosses the limit is cut and
 * followed by "... output truncated (limit N bytes)", and later output is dropped.
 *
 * Errors are described as {type, name, message, stack}. quickjs-ng throws null (or an
 * uninitialised value) when it runs out of memory while building the error, so a thrown null is
 * reported as "InternalError: out of memory".
 */
0, function (builtins, limit, print, console, serialize, host, evaluate) {
  "use strict";
  const stringify = builtins[0];
  const apply = builtins[2];
  const defineProperty = builtins[3];
  const ErrorCtor = builtins[4];
  const toStr = builtins[5];
  const sliceString = builtins[6];
  const charCodeAt = builtins[7];
  const toWellFormed = builtins[8];
  const WeakSetCtor = builtins[9];
  const weakSetHas = builtins[10];
  const weakSetAdd = builtins[11];
  const PromiseCtor = builtins[12];

  // ---- output ------------------------------------------------------------------------------
  const lines = [];
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

  // require('@arangodb') / require('internal'): print, and the db bridge's names (prelude_host.js
  // and arangodb_db.js), which are host calls: on the fast path reading one diverts the run.
  function databaseModule() {
    const module = { print };
    const names = ["db", "aql", "query", "ArangoError"];
    for (let i = 0; i < names.length; i++) {
      const key = names[i];
      defineProperty(module, key, {
        enumerable: true,
        get: function getter() {
          try {
            return hostMachinery().arangodb()[key];
          } catch (e) {
            // The stack starts at the command's read, not in the host machinery.
            if (e instanceof ErrorCtor) ErrorCtor.captureStackTrace(e, getter);
            throw e;
          }
        },
      });
    }
    return module;
  }
  const modules = {
    "@arangodb": databaseModule(),
    internal: databaseModule(),
    console,
  };

  // ---- host calls: prelude_host.js (gets `lines`, to hand new output over with each call) ----
  let hosted;
  let wantsHost = false; // a host call on the fast path: the outcome is void
  function hostMachinery() {
    if (!host) {
      wantsHost = true;
      throw new ErrorCtor("host call on the fast path");
    }
    if (!hosted) hosted = evaluate(host("@source", "null", "[]"))(builtins, host, lines, evaluate);
    return hosted;
  }
  const hostModuleNames = ["@arangodb/request", "@arangotasks/secrets"]; // prelude_host.js's modules

  // ---- the run -------------------------------------------------------------------------------
  const PENDING = 0;
  const DONE = 1;
  const FAILED = 2;
  let state = DONE;
  let settled; // the value the returned promise settled with
  let failure; // the error as JSON text (see describe)

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
      '{"type":"' + type + '","name":' + stringify(name) + ',"message":' + stringify(message) +
      ',"stack":' + stringify(stack) + "}"
    );
  }

  function fail(error) {
    state = FAILED;
    failure = describe("exception", error);
  }

  return {
    // One output line: the prefix and the values, formatted and joined by spaces.
    write(prefix, values) {
      if (truncated) return; // skip the formatting work too
      let line = prefix;
      for (let i = 0; i < values.length; i++) {
        if (i > 0) line += " ";
        line += format(values[i]);
      }
      emit(line);
    },
    // The module, or the message of the error that require throws.
    require(name) {
      const key = toStr(name);
      if (key === "@arangodb" || key === "internal" || key === "console") return modules[key];
      for (let i = 0; i < hostModuleNames.length; i++) {
        if (key === hostModuleNames[i]) return hostMachinery().modules[key];
      }
      return "cannot find module '" + key + "' (arangotasks sandbox: only @arangodb, internal, " +
        "console and " + hostModuleNames.join(", ") + " are available)";
    },
    fetch(url, init) {
      return hostMachinery().fetch(url, init);
    },
    // The message of the error that a timer throws.
    timer(name) {
      return name + " is not available in arangotasks: a command runs to completion without " +
        "an event loop (use a periodic task, or return a Promise)";
    },
    // The command returned a thenable: the run's outcome is what it settles with.
    await(value) {
      state = PENDING;
      const promise = apply(builtins[13], PromiseCtor, [value]);
      apply(builtins[14], promise, [
        function (v) {
          state = DONE;
          settled = v;
        },
        fail,
      ]);
    },
    fail,
    describe,
    // A context prepared ahead (host mode) loads this before its run knows its output limit.
    limit(bytes) {
      limit = bytes;
    },
    preload() {
      hostMachinery();
    },
    // The reply's fields for a run that awaited or failed. An error made here has no stack: the
    // worker cuts stacks at a frame named __arangotasks_*.
    __arangotasks_outcome() {
      if (state === PENDING) {
        fail(new ErrorCtor("the returned promise never settled (no pending jobs left)"));
      }
      return state === FAILED ? '"ok":false,"error":' + failure + "," : serialize(settled);
    },
    // The output as the members of a JSON object.
    output() {
      let text = '"output":[';
      for (let i = 0; i < lines.length; i++) {
        if (i > 0) text += ",";
        text += stringify(lines[i]);
      }
      return text + '],"truncated":' + (truncated ? "true" : "false") +
        (wantsHost ? ',"host":true' : "");
    },
  };
}

/*
 * arangotasks sandbox prelude: evaluated in every fresh QuickJS context before a task's command.
 * Every run compiles it, so it holds only what every run needs; the output, formatting and
 * require machinery is prelude_output.js, compiled in the context on first use (see below).
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
 * print, console's methods, require and the timers are stubs here: the first call of any of them
 * compiles prelude_output.js (which documents the output format and limit) and hands it the
 * builtins captured below, so that a command tampering with prototypes or JSON before its first
 * print changes nothing. The worker puts that source in the global __arangotasks_output, which
 * this prelude takes away before the command runs. There are no calls into Python: the binding
 * refuses them while a time limit is set.
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
 * error types (timeout, memory) and marks stack overflows. The worker cuts a stack at the first
 * frame of a function named __arangotasks_*: keep that prefix on the functions calling the command.
 */
(function (g, evaluate) {
  "use strict";
  const stringify = JSON.stringify;
  const toStr = String;
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const ErrorCtor = Error;
  const FunctionCtor = Function;
  const SyntaxErrorCtor = SyntaxError;
  const PromiseCtor = Promise;
  const functionSource = FunctionCtor.prototype.toString;
  const sliceString = String.prototype.slice;
  const parse = JSON.parse;
  const promiseResolve = Promise.resolve;
  const promiseThen = PromiseCtor.prototype.then;
  // For prelude_output.js, captured before the command runs.
  const charCodeAt = String.prototype.charCodeAt;
  const toWellFormed = String.prototype.toWellFormed;
  const WeakSetCtor = WeakSet;
  const weakSetHas = WeakSet.prototype.has;
  const weakSetAdd = WeakSet.prototype.add;
  const source = g.__arangotasks_output;
  delete g.__arangotasks_output;
  let limit = 65536;
  let machinery; // what prelude_output.js returns, once loaded

  function load() {
    if (!machinery) {
      machinery = evaluate(source)(stringify, apply, defineProperty, ErrorCtor, toStr, charCodeAt,
        sliceString, toWellFormed, WeakSetCtor, weakSetHas, weakSetAdd, safeString, limit, print,
        console);
    }
    return machinery;
  }

  function stub(name, arg) {
    return function (...values) {
      return load()[name](arg, values);
    };
  }

  // Errors are made here, not in prelude_output.js: their stacks start at the stub's frame.
  function noTimers(name) {
    return function () {
      throw new ErrorCtor(load().timer(name));
    };
  }

  // ---- the command's globals -----------------------------------------------------------------
  const print = stub("write", "");
  const console = {
    log: stub("write", ""),
    info: stub("write", ""),
    debug: stub("write", ""),
    warn: stub("write", "WARN: "),
    error: stub("write", "ERROR: "),
  };
  const globals = {
    print,
    console,
    require(name) {
      const module = load().require(name); // the module, or why there is none
      if (typeof module === "string") throw new ErrorCtor(module);
      return module;
    },
    setTimeout: noTimers("setTimeout"),
    setInterval: noTimers("setInterval"),
    setImmediate: noTimers("setImmediate"),
    clearTimeout() {},
    clearInterval() {},
    clearImmediate() {},
  };
  for (const name in globals) {
    defineProperty(g, name, { value: globals[name], writable: true, configurable: true });
  }

  // ---- the run -------------------------------------------------------------------------------
  let started = false;
  let state = 1; // 0 pending, 1 done, 2 failed
  let result;
  let failure; // the error as JSON text (see describe)

  function safeString(value) {
    try {
      return toStr(value);
    } catch (e) {
      return "[object]";
    }
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
      message = typeof error === "string" ? error : load().format(error);
    }
    return '{"type":"' + type + '","name":' + stringify(name) + ',"message":' +
      stringify(message) + ',"stack":' + stringify(stack) + "}";
  }

  function __arangotasks_compile(command) {
    const fn = new FunctionCtor("params", command);
    // new Function concatenates its source: a body like "}); code(); (function(){" closes the
    // function early (and has already run). V8 rejects such a body, so do we.
    if (apply(functionSource, fn, []) !== "function anonymous(params\n) {\n" + command + "\n}") {
      throw new SyntaxErrorCtor("the command closes its function body early");
    }
    return fn;
  }

  function __arangotasks_run(command, paramsJson) {
    return __arangotasks_compile(command)(paramsJson === undefined ? undefined : parse(paramsJson));
  }

  function fail(e) {
    state = 2;
    failure = describe("exception", e);
  }

  function __arangotasks_start(command, paramsJson, outputLimit) {
    // Once per context: a command calling it again could lift its own output limit.
    if (started) throw new ErrorCtor("__arangotasks.start runs once per context");
    started = true;
    limit = outputLimit;
    try {
      const value = __arangotasks_run(command, paramsJson);
      if (
        value instanceof PromiseCtor ||
        (value !== null &&
          (typeof value === "object" || typeof value === "function") &&
          typeof value.then === "function")
      ) {
        state = 0;
        apply(promiseThen, apply(promiseResolve, PromiseCtor, [value]), [
          function (v) {
            state = 1;
            result = v;
          },
          fail,
        ]);
      } else {
        result = value;
      }
    } catch (e) {
      fail(e);
    }
  }

  // The reply to the worker: a JSON object with the given fields and the output.
  function reply(fields) {
    const text = "{" + fields + (machinery ? machinery.fields() : '"output":[],"truncated":false') +
      "}";
    // A concatenation is a rope string, which the binding cannot convert: slice flattens it.
    return apply(sliceString, text, [0]);
  }

  defineProperty(g, "__arangotasks", {
    value: Object.freeze({
      compile: __arangotasks_compile,
      start: __arangotasks_start,
      finish: function __arangotasks_finish() {
        if (state === 0) {
          fail(new ErrorCtor("the returned promise never settled (no pending jobs left)"));
        }
        if (state === 2) return reply('"ok":false,"error":' + failure + ",");
        let json;
        try {
          json = stringify(result);
        } catch (e) {
          return reply('"ok":false,"error":' + describe("result", e) + ",");
        }
        return reply('"ok":true,"result":' + (json === undefined ? "null" : stringify(json)) + ",");
      },
      output() {
        return reply("");
      },
    }),
  });
})(globalThis, eval);

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
 *   require('@arangodb/request'), fetch(url, init)   outbound HTTP through the host (prelude_host.js)
 *   require(anything else)           throws "cannot find module"
 *   setTimeout/setInterval/setImmediate   throw (a command runs to completion; there is no
 *                                    event loop), clearTimeout/clearInterval/clearImmediate: no-ops
 * print, console's methods, require and the timers are stubs here: the first call of any of them
 * compiles prelude_output.js (which documents the output format and limit) and hands it the
 * builtins captured below, so that a command tampering with prototypes or JSON before its first
 * print changes nothing. So does a run that returns a thenable or fails (the error description
 * and the promise handling are there too). The worker puts that source in the global
 * __arangotasks_output, which this prelude takes away before the command runs. The binding refuses
 * calls into Python while a time limit is set, so a run starts without them (the fast path): a
 * host call there (prelude_output.js) flags the reply with "host" and throws, and the worker runs
 * the command again from scratch in host mode (see worker.py), where it hands the Python function
 * that carries host calls to the server to bindHost before the command starts. Compiling costs QuickJS per
 * token and per function, and an expression starting with "(", "[" or "{" is scanned twice: keep
 * this file small and its big expressions free of such starts.
 *
 * The worker drives a run through the frozen global __arangotasks:
 *   bindHost(fn)      host mode: the host function (once, before the command starts)
 *   preload()         host mode: compile prelude_output.js and prelude_host.js before the run
 *                     (a worker preparing its next host-mode context does it ahead of the request;
 *                     start then hands the machinery the run's output limit)
 *   compile(command)  new Function("params", command), throwing SyntaxError when it does not compile
 *   start(command, paramsJson, outputLimit)  compile the command and call it with the params
 *     (paramsJson null or undefined: no params); returns finish
 *   finish()  -> JSON text {ok, result, error, output, truncated} once promise jobs are drained
 *   output()  -> JSON text {output, truncated} (after the engine itself failed)
 * The value of this script is start, which the worker calls directly (no script to compile).
 * Builtins are captured here so that a command tampering with prototypes or JSON cannot break
 * the reply, and every string reaches Python through JSON.stringify (well-formed, escaped).
 *
 * Errors are described as {type, name, message, stack}. quickjs-ng throws null (or an
 * uninitialised value) when it runs out of memory while building the error, so a thrown null is
 * reported as "InternalError: out of memory"; the worker maps the engine's limit errors to the
 * error types (timeout, memory) and marks stack overflows. The worker cuts a stack at the first
 * frame of a function named __arangotasks_*: keep that prefix on the functions calling the command.
 */
0, function (g, evaluate) {
  "use strict";
  // Builtins, captured before the command can replace them; prelude_output.js gets this list.
  const builtins = [JSON.stringify, JSON.parse, Reflect.apply, Object.defineProperty, Error,
    String, String.prototype.slice, String.prototype.charCodeAt, String.prototype.toWellFormed,
    WeakSet, WeakSet.prototype.has, WeakSet.prototype.add, Promise, Promise.resolve,
    Promise.prototype.then];
  const stringify = builtins[0];
  const apply = builtins[2];
  const ErrorCtor = builtins[4];
  const captureStack = ErrorCtor.captureStackTrace;
  const FunctionCtor = Function;
  const functionSource = FunctionCtor.prototype.toString;
  const SyntaxErrorCtor = SyntaxError;
  const source = g.__arangotasks_output;
  delete g.__arangotasks_output;
  let machinery; // what prelude_output.js returns, once loaded
  let hostFunction;
  let limit = 65536;
  let started = false;
  let owned = false; // the outcome is machinery's: a promise was returned, or the run failed
  let result;

  function load() {
    if (!machinery) {
      machinery = evaluate(source)(builtins, limit, print, console, __arangotasks_serialize,
        hostFunction, evaluate);
    }
    return machinery;
  }

  // An Error whose stack starts at the caller of `callee`: the prelude's frames are not the
  // command's (the worker maps the remaining frames to positions in the command).
  function errorFrom(callee, message) {
    const error = new ErrorCtor(message);
    captureStack(error, callee);
    return error;
  }

  // A global function calling prelude_output.js's `name`. A string it returns is thrown as an
  // Error whose stack starts at the command's call.
  function stub(name, arg) {
    return function stubbed(...values) {
      const value = load()[name](arg, values);
      if (typeof value === "string") throw errorFrom(stubbed, value);
    };
  }

  function require(name) {
    const module = load().require(name);
    if (typeof module === "string") throw errorFrom(require, module);
    return module;
  }

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
    require,
    fetch(url, init) {
      return load().fetch(url, init);
    },
    setTimeout: stub("timer", "setTimeout"),
    setInterval: stub("timer", "setInterval"),
    setImmediate: stub("timer", "setImmediate"),
    clearTimeout() {},
    clearInterval() {},
    clearImmediate() {},
  };
  for (const name in globals) {
    builtins[3](g, name, { value: globals[name], writable: true, configurable: true });
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

  // The reply's fields for a run that returned `value`.
  function __arangotasks_serialize(value) {
    let json;
    try {
      json = stringify(value);
    } catch (e) {
      return '"ok":false,"error":' + load().describe("result", e) + ",";
    }
    return '"ok":true,"result":' + (json === undefined ? "null" : stringify(json)) + ",";
  }

  // The reply to the worker: a JSON object with the given fields and the output.
  function reply(fields) {
    const text = "{" + fields + (machinery ? machinery.output() : '"output":[],"truncated":false') +
      "}";
    // A concatenation is a rope string, which the binding cannot convert: slice flattens it.
    return apply(builtins[6], text, [0]);
  }

  function __arangotasks_start(command, paramsJson, outputLimit) {
    // Once per context: a command calling it again could lift its own output limit.
    if (started) throw new ErrorCtor("__arangotasks.start runs once per context");
    started = true;
    limit = outputLimit;
    if (machinery) machinery.limit(outputLimit);
    try {
      const fn = __arangotasks_compile(command);
      result = fn(paramsJson == null ? undefined : builtins[1](paramsJson));
      if (
        result instanceof builtins[12] ||
        (result !== null &&
          (typeof result === "object" || typeof result === "function") &&
          typeof result.then === "function")
      ) {
        owned = true;
        load().await(result);
      }
    } catch (e) {
      owned = true;
      load().fail(e);
    }
    return __arangotasks_finish;
  }

  function __arangotasks_finish() {
    return reply(owned ? machinery.__arangotasks_outcome() : __arangotasks_serialize(result));
  }

  function output() {
    return reply("");
  }

  const api = {
    bindHost(fn) {
      hostFunction = hostFunction || fn;
    },
    preload() {
      if (hostFunction) load().preload();
    },
    compile: __arangotasks_compile,
    start: __arangotasks_start,
    finish: __arangotasks_finish,
    output,
  };
  builtins[3](g, "__arangotasks", { value: Object.freeze(api) });
  return __arangotasks_start;
}(globalThis, eval);

// params_echo.js: shows what a task receives as `params`.
//
// Purpose:  debugging a task registration: params keep their JSON type (an object stays an
//           object, a string stays a string, an absent params is undefined).
// params:   any JSON value, or none.
// Effect:   prints the type and the value, and returns {type, value}.
const type = params === null ? "null" : Array.isArray(params) ? "array" : typeof params;
console.log("params type:", type);
console.log("params value:", params);
return { type: type, value: params === undefined ? null : params };

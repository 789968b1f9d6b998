// deliberate_error.js: fails on purpose, to show how a failed run is reported.
//
// Purpose:  checking alerting and the run history: the run ends as failed with type
//           "exception", the error's name, message and stack; output printed before the error
//           is kept. A periodic task keeps running after a failed run (as in ArangoDB).
// params:   optional {"reason": string} to put into the message.
// Effect:   prints one line, then throws an Error (nothing is returned).
const reason = (params && params.reason) || "the upstream report was empty";
console.log("checking the nightly report...");
function checkReport() {
  throw new Error("deliberate failure: " + reason);
}
checkReport();

// heartbeat.js: prints one timestamped heartbeat line per run.
//
// Purpose:  a liveness signal; register it as a periodic task (e.g. period 60) and watch the
//           server log ("[task <id>] heartbeat ...") or the run history.
// params:   optional object {"service": string}; the name shown in the line (default "arangotasks").
// Effect:   prints "heartbeat <service> <ISO timestamp>" and returns the timestamp in ms.
const service = (params && params.service) || "arangotasks";
const now = Date.now();
require("@arangodb").print("heartbeat " + service + " " + new Date(now).toISOString());
return now;

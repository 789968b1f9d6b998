// http_health_check.js: checks that HTTP services answer, one line per service.
//
// Purpose:  an uptime check; register it as a periodic task and watch the run history: a run
//           fails when a service is down.
// params:   {"urls": [string], "expect": number (optional, default: any 2xx status),
//           "timeout": seconds per request (optional, default 5)}; every URL's host must be
//           allowed by ARANGOTASKS_HTTP_ALLOW.
// Effect:   GETs every URL; prints "UP <url> <status> <ms> ms" or "DOWN <url>: <reason>"; fails
//           the run naming the services that are down, else returns {"up": N}.
const request = require("@arangodb/request");
if (!params || !Array.isArray(params.urls) || params.urls.length === 0) {
  throw new Error("params.urls must be a non-empty array of URLs");
}
const down = [];
for (const url of params.urls) {
  const started = Date.now();
  let reason = null;
  try {
    const res = request.get(url, { timeout: params.timeout || 5, followRedirect: true });
    const ok = params.expect ? res.status === params.expect : res.status >= 200 && res.status < 300;
    if (ok) {
      print("UP " + url + " " + res.status + " " + (Date.now() - started) + " ms");
      continue;
    }
    reason = "status " + res.status;
  } catch (e) {
    reason = e.message;
  }
  print("DOWN " + url + ": " + reason);
  down.push(url);
}
if (down.length > 0) throw new Error(down.length + " service(s) down: " + down.join(", "));
return { up: params.urls.length };

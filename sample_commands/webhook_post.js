// webhook_post.js: posts a JSON event to a webhook (a chat, paging or monitoring service).
//
// Purpose:  notify another service from a periodic or timed task.
// params:   {"url": string, "event": string, "data": any (optional), "token": string (optional)}:
//           the webhook's URL (its host must be allowed by ARANGOTASKS_HTTP_ALLOW), the event
//           name, a payload, and a bearer token for the webhook.
// Effect:   POSTs {"event", "data", "sentAt"} as JSON; prints the answer's status; fails the
//           run when the webhook answers with an error status; returns {"status": N}.
const request = require("@arangodb/request");
if (!params || typeof params.url !== "string" || typeof params.event !== "string") {
  throw new Error("params.url and params.event must be strings");
}
const options = {
  json: true,
  body: { event: params.event, data: params.data === undefined ? null : params.data,
          sentAt: new Date().toISOString() },
  timeout: 10,
};
if (params.token) options.auth = { bearer: params.token };
const res = request.post(params.url, options);
print("webhook " + params.event + ": " + res.status + " " + res.message);
if (res.status >= 400) {
  throw new Error("webhook answered " + res.status + ": " + String(res.body).slice(0, 200));
}
return { status: res.status };

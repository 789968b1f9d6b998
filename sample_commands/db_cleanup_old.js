// db_cleanup_old.js: delete documents older than a number of days, by AQL (needs the db bridge).
//
// Purpose:  the classic ArangoDB housekeeping task: keep a log collection from growing forever.
// params:   {"collection": "logs", "field": "time", "maxAgeDays": 30}; field holds epoch ms.
// Effect:   removes every document whose field is older than maxAgeDays, prints how many, and
//           returns {removed, cutoff}.
const db = require("@arangodb").db;
const collection = (params && params.collection) || "logs";
const field = (params && params.field) || "time";
const cutoff = Date.now() - ((params && params.maxAgeDays) || 30) * 24 * 3600 * 1000;
const removed = db._query(
  "FOR d IN @@c FILTER d[@field] < @cutoff REMOVE d IN @@c RETURN OLD._key",
  { "@c": collection, field: field, cutoff: cutoff }
).toArray();
print("removed " + removed.length + " document(s) older than " + new Date(cutoff).toISOString() +
  " from " + collection);
return { removed: removed.length, cutoff: cutoff };

// db_counter.js: count the runs of a task in a document (needs the db bridge).
//
// Purpose:  the ArangoDB task tests' favourite: each run increments a counter document.
// params:   {"collection": "counters", "key": "runs"} (both optional).
// Effect:   creates the collection and the document when missing, increments its value,
//           prints and returns the new value.
const db = require("@arangodb").db;
const name = (params && params.collection) || "counters";
const key = (params && params.key) || "runs";
const counters = db._collection(name) || db._createDocumentCollection(name);
let value = 1;
if (counters.exists(key)) {
  value = counters.document(key).value + 1;
  counters.update(key, { value: value, updated: new Date().toISOString() });
} else {
  counters.save({ _key: key, value: value, updated: new Date().toISOString() });
}
print(key + " = " + value);
return value;

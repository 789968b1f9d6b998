// db_report_by_example.js: a report of matching documents, saved back (needs the db bridge).
//
// Purpose:  query by example, summarise, store the summary: a typical nightly report task.
// params:   {"collection": "orders", "example": {"status": "open"}, "reports": "reports"}
// Effect:   sums the "amount" of every document matching the example, saves
//           {type: "by-example", collection, example, count, total, at} into the reports
//           collection (created when missing), prints a line and returns {count, total}.
const { db, query } = require("@arangodb");
const source = db._collection((params && params.collection) || "orders");
if (source === null) throw new Error("no such collection: " + params.collection);
const example = (params && params.example) || { status: "open" };
const matches = source.byExample(example).toArray();
const total = matches.reduce((sum, doc) => sum + (Number(doc.amount) || 0), 0);
const reportsName = (params && params.reports) || "reports";
const reports = db._collection(reportsName) || db._createDocumentCollection(reportsName);
const at = Date.now();
query`INSERT ${{ type: "by-example", collection: source.name(), example, count: matches.length,
  total, at }} INTO ${reports}`;
print(matches.length + " matching document(s) in " + source.name() + ", total " + total);
return { count: matches.length, total: total };

// async_report.js: a command written with async/await (returns a Promise).
//
// Purpose:  shows that a returned Promise is awaited: the run's result is the settled value,
//           and a rejection fails the run. There are no timers (setTimeout throws) and no I/O,
//           so every awaited value must already be at hand or come from another Promise.
// params:   optional {"items": [string, ...]} (default ["a", "b", "c"]).
// Effect:   prints one line per item and returns {"processed": <count>}.
return (async function () {
  const items = (params && params.items) || ["a", "b", "c"];
  let processed = 0;
  for (const item of items) {
    const upper = await Promise.resolve(String(item).toUpperCase());
    console.log("processed", upper);
    processed++;
  }
  return { processed: processed };
})();

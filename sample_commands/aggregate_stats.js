// aggregate_stats.js: summary statistics of a list of numbers.
//
// Purpose:  a small data-processing task (e.g. fed latency samples through params).
// params:   {"values": [number, ...]}; non-empty, every entry a finite number.
// Effect:   returns {count, sum, min, max, mean, median, stddev} and prints a one-line summary.
const values = params && params.values;
if (!Array.isArray(values) || values.length === 0) {
  throw new TypeError("params.values must be a non-empty array of numbers");
}
values.forEach(function (v, i) {
  if (typeof v !== "number" || !isFinite(v)) {
    throw new TypeError("params.values[" + i + "] is not a finite number: " + JSON.stringify(v));
  }
});
const sorted = values.slice().sort(function (a, b) { return a - b; });
const count = sorted.length;
const sum = sorted.reduce(function (acc, v) { return acc + v; }, 0);
const mean = sum / count;
const middle = Math.floor(count / 2);
const median = count % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
const variance = sorted.reduce(function (acc, v) { return acc + (v - mean) * (v - mean); }, 0) / count;
const stats = {
  count: count,
  sum: sum,
  min: sorted[0],
  max: sorted[count - 1],
  mean: mean,
  median: median,
  stddev: Math.sqrt(variance),
};
print("n=" + count + " min=" + stats.min + " max=" + stats.max + " mean=" + mean.toFixed(3));
return stats;

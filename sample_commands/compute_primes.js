// compute_primes.js: counts the primes below a limit with a sieve of Eratosthenes.
//
// Purpose:  a CPU- and memory-bound computation, handy to see the sandbox's time and memory
//           limits at work (a limit of 1e8 needs about 100 MB and fails under the default 64 MB).
// params:   {"limit": number}; default 100000, must be an integer between 2 and 1e9.
// Effect:   prints the count and the largest prime found, returns {limit, count, largest}.
const limit = params && params.limit !== undefined ? params.limit : 100000;
if (!Number.isInteger(limit) || limit < 2 || limit > 1e9) {
  throw new RangeError("params.limit must be an integer between 2 and 1e9, got " + limit);
}
const composite = new Uint8Array(limit);
let count = 0;
let largest = 0;
for (let n = 2; n < limit; n++) {
  if (composite[n]) continue;
  count++;
  largest = n;
  for (let multiple = n * n; multiple < limit; multiple += n) composite[multiple] = 1;
}
print("primes below " + limit + ": " + count + " (largest " + largest + ")");
return { limit: limit, count: count, largest: largest };

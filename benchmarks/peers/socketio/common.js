"use strict";
// Shared by the Socket.IO peer's scripts: argument parsing, the message format
// and the latency histogram of wsframe's C load engine (_speedups/wsload.h), so
// both sides of benchmarks/socketio_redis.py measure alike.

/** Parse `--name value` pairs into an object (every value a string). */
function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!key.startsWith("--") || i + 1 >= argv.length) {
      throw new Error(`bad argument ${key}: expected --name value`);
    }
    out[key.slice(2)] = argv[i + 1];
  }
  return out;
}

/** A message of `size` ASCII bytes: 16 hex digits of CLOCK_MONOTONIC ns, 8 of sender id, '.' filler. */
function makeMessage(size, sender) {
  const ts = process.hrtime.bigint().toString(16).padStart(16, "0");
  const id = (sender >>> 0).toString(16).padStart(8, "0");
  return ts + id + ".".repeat(Math.max(0, size - 24));
}

// Histogram geometry as in wsload.h: 1 us buckets below 1024 us, then 128 buckets
// per power of two up to 2^26 us, then one overflow bucket.
const LINEAR = 1024, SUB_BITS = 7, MIN_EXP = 10, MAX_EXP = 26;
const NBUCKETS = LINEAR + (MAX_EXP - MIN_EXP) * (1 << SUB_BITS) + 1;

function bucket(us) {
  if (us < LINEAR) return us;
  const k = 31 - Math.clz32(us);
  if (k >= MAX_EXP) return NBUCKETS - 1;
  return LINEAR + (k - MIN_EXP) * (1 << SUB_BITS) + ((us >>> (k - SUB_BITS)) & ((1 << SUB_BITS) - 1));
}

/** Bucket i holds [lower, upper) microseconds; the overflow bucket ends at max_us. */
function bucketRange(i, maxUs) {
  if (i < LINEAR) return [i, i + 1];
  if (i >= NBUCKETS - 1) return [2 ** MAX_EXP, maxUs + 1];
  const k = MIN_EXP + Math.floor((i - LINEAR) / (1 << SUB_BITS));
  const sub = (i - LINEAR) % (1 << SUB_BITS);
  const lower = ((1 << SUB_BITS) + sub) * 2 ** (k - SUB_BITS);
  return [lower, lower + 2 ** (k - SUB_BITS)];
}

class Histogram {
  constructor() {
    this.counts = new Float64Array(NBUCKETS);
    this.count = 0;
    this.sumNs = 0;
    this.maxNs = 0;
  }

  /** Record one latency in nanoseconds (negative: not one of our timestamps, ignored). */
  record(ns) {
    if (ns < 0) return;
    const us = Math.min(Math.floor(ns / 1000), 2 ** 31 - 1);
    this.counts[bucket(us)]++;
    this.count++;
    this.sumNs += ns;
    if (ns > this.maxNs) this.maxNs = ns;
  }

  /** Non-empty buckets as [index, count] pairs, for merging in the driver. */
  sparse() {
    const out = [];
    for (let i = 0; i < NBUCKETS; i++) if (this.counts[i]) out.push([i, this.counts[i]]);
    return out;
  }
}

module.exports = { parseArgs, makeMessage, Histogram, bucketRange, NBUCKETS };

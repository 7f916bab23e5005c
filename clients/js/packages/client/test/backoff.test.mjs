// Unit tests of the reconnect backoff of @herald/client: exponential growth,
// the cap, and the jitter bounds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, reconnectOptions, DEFAULT_RECONNECT } from '../dist/index.js';

test('backoff grows by factor and stops at the cap (no jitter)', () => {
  const o = reconnectOptions({ initialDelayMs: 100, maxDelayMs: 5000, factor: 2, jitter: 0 });
  const delays = [0, 1, 2, 3, 4, 5, 6, 10, 50, 2000].map((a) => backoffDelay(a, o, () => 0.5));
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
});

test('jittered delays stay within [d * (1 - jitter), d] and under the cap', () => {
  const o = reconnectOptions({ initialDelayMs: 250, maxDelayMs: 8000, factor: 1.7, jitter: 0.4 });
  for (let attempt = 0; attempt < 40; attempt++) {
    const d = Math.min(8000, 250 * Math.pow(1.7, attempt));
    for (const r of [0, 0.25, 0.5, 0.999999, Math.random(), Math.random()]) {
      const v = backoffDelay(attempt, o, () => r);
      assert.ok(v >= Math.floor(d * 0.6) && v <= Math.ceil(d), `attempt ${attempt} r ${r}: ${v} not in [${d * 0.6}, ${d}]`);
      assert.ok(v <= 8000);
    }
  }
  // Extreme random values are clamped.
  assert.equal(backoffDelay(0, o, () => 5), 150);
  assert.equal(backoffDelay(0, o, () => -1), 250);
});

test('full jitter may reach 0 but never exceeds the cap', () => {
  const o = reconnectOptions({ initialDelayMs: 1000, maxDelayMs: 1000, factor: 3, jitter: 1 });
  assert.equal(backoffDelay(7, o, () => 0), 1000);
  assert.equal(backoffDelay(7, o, () => 1), 0);
});

test('reconnect options: defaults and validation', () => {
  assert.deepEqual(reconnectOptions(), DEFAULT_RECONNECT);
  assert.equal(reconnectOptions({ maxDelayMs: 60000 }).initialDelayMs, DEFAULT_RECONNECT.initialDelayMs);
  assert.throws(() => reconnectOptions({ jitter: 1.5 }), RangeError);
  assert.throws(() => reconnectOptions({ factor: 0.5 }), RangeError);
  assert.throws(() => reconnectOptions({ initialDelayMs: 100, maxDelayMs: 10 }), RangeError);
  assert.throws(() => reconnectOptions({ initialDelayMs: -1 }), RangeError);
});

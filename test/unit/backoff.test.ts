import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelayMs, parseRetryAfterMs } from '../../apps/worker/src/engine/backoff.js';

describe('backoff', () => {
  test('full jitter stays within [0, base * 2^(attempt-1)]', () => {
    assert.equal(backoffDelayMs(1, 1000, () => 1), 1000);
    assert.equal(backoffDelayMs(3, 1000, () => 1), 4000);
    assert.equal(backoffDelayMs(3, 1000, () => 0), 0);
    assert.equal(backoffDelayMs(3, 1000, () => 0.5), 2000);
  });

  test('is capped at one hour', () => {
    assert.equal(backoffDelayMs(40, 1000, () => 1), 3_600_000);
  });

  test('Retry-After in seconds or as an HTTP date', () => {
    assert.equal(parseRetryAfterMs('3'), 3000);
    const now = Date.parse('2026-11-25T10:00:00Z');
    assert.equal(parseRetryAfterMs('Wed, 25 Nov 2026 10:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfterMs('Wed, 25 Nov 2026 09:00:00 GMT', now), 0);
    assert.equal(parseRetryAfterMs('soon'), undefined);
    assert.equal(parseRetryAfterMs(undefined), undefined);
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBenchConfig } from '../../bench/lib/config.js';
import { isReplyflow, workerContendersOf } from '../../bench/worker.js';

describe('npm run bench settings', () => {
  test('BENCH_WORKER_VARIANT adds a fifth worker contender with those settings', () => {
    const config = loadBenchConfig({ BENCH_WORKER_VARIANT: '{"WORKER_CONCURRENCY":"64","LOG_LEVEL":"warn"}' });
    assert.deepEqual(config.workerVariant, { WORKER_CONCURRENCY: '64', LOG_LEVEL: 'warn' });
    assert.deepEqual(workerContendersOf(config), ['noop', 'raw', 'replyflow1', 'replyflow2', 'variant']);
    assert.deepEqual(workerContendersOf(loadBenchConfig({})), ['noop', 'raw', 'replyflow1', 'replyflow2']);
    // The variant is replyflow: a delivery out of its phone's order is a problem of the run.
    assert.deepEqual(workerContendersOf(config).filter(isReplyflow), ['replyflow1', 'replyflow2', 'variant']);
  });

  for (const bad of ['WORKER_CONCURRENCY=64', '["64"]', '{"WORKER_CONCURRENCY":64}', '{}', 'null']) {
    test(`BENCH_WORKER_VARIANT=${bad} is refused with what it should be`, () => {
      assert.throws(() => loadBenchConfig({ BENCH_WORKER_VARIANT: bad }), /BENCH_WORKER_VARIANT must be a JSON object of settings, e\.g\./);
    });
  }
});

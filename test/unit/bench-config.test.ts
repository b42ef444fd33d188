import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadBenchConfig } from '../../bench/lib/config.js';
import { isReplyflow, workerContendersOf } from '../../bench/worker.js';

describe('npm run bench settings', () => {
  test('BENCH_WORKER_VARIANT adds a worker contender with those settings', () => {
    const config = loadBenchConfig({ BENCH_WORKER_VARIANT: '{"WORKER_CONCURRENCY":"64","LOG_LEVEL":"debug"}' });
    assert.deepEqual(config.workerVariant, { WORKER_CONCURRENCY: '64', LOG_LEVEL: 'debug' });
    assert.deepEqual(workerContendersOf(config), ['noop', 'raw', 'rawSameClient', 'replyflow1', 'replyflow2', 'variant']);
    assert.deepEqual(workerContendersOf(loadBenchConfig({})), ['noop', 'raw', 'rawSameClient', 'replyflow1', 'replyflow2']);
    // The variant is replyflow: a delivery out of its phone's order is a problem of the run.
    assert.deepEqual(workerContendersOf(config).filter(isReplyflow), ['replyflow1', 'replyflow2', 'variant']);
  });

  for (const bad of ['WORKER_CONCURRENCY=64', '["64"]', '{"WORKER_CONCURRENCY":64}', '{}', 'null']) {
    test(`BENCH_WORKER_VARIANT=${bad} is refused with what it should be`, () => {
      assert.throws(() => loadBenchConfig({ BENCH_WORKER_VARIANT: bad }), /BENCH_WORKER_VARIANT must be a JSON object of settings, e\.g\./);
    });
  }

  test('the pairs section pairs replyflow with the variant, ten times unless told otherwise', () => {
    const variant = '{"WORKER_CONCURRENCY":"64"}';
    assert.equal(loadBenchConfig({ BENCH_SECTIONS: 'pairs', BENCH_WORKER_VARIANT: variant }).pairs, 10);
    assert.equal(loadBenchConfig({ BENCH_SECTIONS: 'pairs', BENCH_WORKER_VARIANT: variant, BENCH_PAIRS: '4' }).pairs, 4);
    assert.throws(() => loadBenchConfig({ BENCH_SECTIONS: 'pairs' }), /BENCH_SECTIONS=pairs pairs replyflow with a variant: set BENCH_WORKER_VARIANT too/);
    assert.throws(() => loadBenchConfig({ BENCH_SECTIONS: 'pairs', BENCH_WORKER_VARIANT: variant, BENCH_PAIRS: '0' }), /BENCH_PAIRS must be a number >= 1/);
  });

  test('a log level that hides the start lines the bench waits for is refused, not waited on', () => {
    assert.throws(() => loadBenchConfig({ BENCH_LOG_LEVEL: 'warn' }), /BENCH_LOG_LEVEL: LOG_LEVEL must be one of trace, debug, info here/);
    assert.throws(() => loadBenchConfig({ BENCH_WORKER_VARIANT: '{"LOG_LEVEL":"error"}' }), /BENCH_WORKER_VARIANT: LOG_LEVEL must be one of/);
    assert.equal(loadBenchConfig({ BENCH_WORKER_VARIANT: '{"LOG_LEVEL":"debug"}' }).workerVariant?.LOG_LEVEL, 'debug');
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createStepTools, SleepSignal } from '../../apps/worker/src/engine/step-tools.js';
import { startRedis } from '../helpers/redis-server.js';

describe('durable steps', () => {
  test("a step's result is stored before the next step runs, with a sleep, or on flush; never twice run", async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:forward.e1';
      const steps = await createStepTools({ redis: client, stepsKey });
      assert.deepEqual(await steps.run('a', async () => ({ sent: 1 })), { sent: 1 });
      assert.deepEqual(await client.hgetall(stepsKey), {}, 'held back until something else happens');
      let secondSeenStored: Record<string, string> = {};
      await steps.run('b', async () => {
        secondSeenStored = await client.hgetall(stepsKey);
        return 2;
      });
      assert.deepEqual(secondSeenStored, { 'run:a': '{"sent":1}' }, 'stored before the next step ran');
      await assert.rejects(steps.sleep('pause', 60_000), (error) => error instanceof SleepSignal);
      const afterSleep = await client.hgetall(stepsKey);
      assert.equal(afterSleep['run:b'], '2', 'stored with the sleep');
      assert.ok(Number(afterSleep['sleep:pause']) > Date.now());

      const replay = await createStepTools({ redis: client, stepsKey });
      let ran = 0;
      assert.deepEqual(await replay.run('a', async () => ++ran), { sent: 1 });
      await replay.run('c', async () => ++ran);
      await replay.flush();
      assert.equal(ran, 1, 'only the new step ran');
      assert.equal((await client.hgetall(stepsKey))['run:c'], '1', 'flush stores it');
    } finally {
      await redis.cleanup();
    }
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PermanentError, type RedisClient } from '@replyflow/shared';
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

  test('steps run side by side are all stored with the next write, and run once', async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:onboard.e1';
      const ran: string[] = [];
      const workflow = async (steps: Awaited<ReturnType<typeof createStepTools>>) => {
        await Promise.all([steps.run('crm', async () => ran.push('crm')), steps.run('email', async () => ran.push('email'))]);
        await steps.sleep('cool-down', 60_000);
      };
      await assert.rejects(workflow(await createStepTools({ redis: client, stepsKey })), (error) => error instanceof SleepSignal);
      const afterSleep = await client.hgetall(stepsKey);
      assert.equal(afterSleep['run:crm'], '1');
      assert.equal(afterSleep['run:email'], '2');

      await client.hdel(stepsKey, 'sleep:cool-down');
      await assert.rejects(workflow(await createStepTools({ redis: client, stepsKey })), (error) => error instanceof SleepSignal);
      assert.deepEqual(ran, ['crm', 'email'], 'neither ran again');
    } finally {
      await redis.cleanup();
    }
  });

  test('a step that fails beside another: the other is waited for and stored, so a retry runs only the failed one', async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:onboard.e3';
      const ran: string[] = [];
      let crmFails = true;
      const workflow = async (steps: Awaited<ReturnType<typeof createStepTools>>) => {
        await Promise.all([
          steps.run('crm', async () => {
            ran.push('crm');
            if (crmFails) throw new Error('crm down');
          }),
          steps.run('email', async () => {
            await new Promise((resolve) => setTimeout(resolve, 100));
            ran.push('email');
            return 'sent';
          }),
        ]);
      };
      const steps = await createStepTools({ redis: client, stepsKey });
      await assert.rejects(workflow(steps), /crm down/);
      await steps.flush();
      assert.deepEqual(await client.hgetall(stepsKey), { 'run:email': '"sent"' });

      crmFails = false;
      const retry = await createStepTools({ redis: client, stepsKey });
      await workflow(retry);
      assert.deepEqual(ran, ['crm', 'email', 'crm'], 'email ran once');
    } finally {
      await redis.cleanup();
    }
  });

  test('a step finishing while earlier results are written is stored with the next write', async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:onboard.e2';
      let finishSlowStep: (() => void) | undefined;
      const finishingSlowStepOnWrite = {
        hgetall: (key: string) => client.hgetall(key),
        hset: (key: string, ...fields: string[]) => {
          finishSlowStep?.();
          return client.hset(key, ...fields);
        },
      } as unknown as RedisClient;
      const steps = await createStepTools({ redis: finishingSlowStepOnWrite, stepsKey });
      const slow = steps.run('slow', () => new Promise((resolve) => (finishSlowStep = () => resolve('slow'))));
      await steps.run('fast', async () => 'fast');
      await steps.run('next', async () => 'next');
      await slow;
      await steps.flush();
      assert.deepEqual(Object.keys(await client.hgetall(stepsKey)).sort(), ['run:fast', 'run:next', 'run:slow']);
    } finally {
      await redis.cleanup();
    }
  });

  test('a step id used twice in one run fails the attempt for good, naming the id', async () => {
    const redis = await startRedis();
    try {
      const steps = await createStepTools({ redis: redis.client(), stepsKey: 'test:steps:notify.e1' });
      const notified: string[] = [];
      const notifyAll = async () => {
        for (const to of ['alice', 'bob']) await steps.run('notify', async () => notified.push(to));
      };
      await assert.rejects(notifyAll(), (error) => error instanceof PermanentError && /step id "notify" is used twice/.test(error.message));
      assert.deepEqual(notified, ['alice']);
      await assert.rejects(steps.sleep('notify', 0).then(() => steps.sleep('notify', 0)), /step id "notify" is used twice/);
    } finally {
      await redis.cleanup();
    }
  });

  test("the engine's steps are kept apart from the workflow's, whatever ids it picks", async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:reply.e1';
      const steps = await createStepTools({ redis: client, stepsKey });
      await steps.engineSleepUntil('debounce', Date.now() - 1);
      assert.equal(await steps.engine('debounce', async () => false), false);
      assert.equal(await steps.run('debounce', async () => 'sent'), 'sent');
      await assert.rejects(steps.sleep('debounce', 60_000), (error) => error instanceof SleepSignal);
      assert.deepEqual(Object.keys(await client.hgetall(stepsKey)).sort(), ['engine-sleep:debounce', 'engine:debounce', 'run:debounce', 'sleep:debounce']);
    } finally {
      await redis.cleanup();
    }
  });

  test('a stored result replays as it was returned, undefined and null included', async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:forward.e3';
      const results: Record<string, unknown> = { undefined: undefined, null: null, zero: 0, text: '', list: [1, { a: 'b' }] };
      const first = await createStepTools({ redis: client, stepsKey });
      for (const [id, result] of Object.entries(results)) assert.equal(await first.run(id, async () => result), result);
      await first.flush();
      const replay = await createStepTools({ redis: client, stepsKey });
      for (const [id, result] of Object.entries(results)) {
        assert.deepEqual(await replay.run(id, async () => assert.fail(`step ${id} ran again`)), result, id);
      }
    } finally {
      await redis.cleanup();
    }
  });

  test('a result that is not JSON-serializable fails the attempt for good, naming the step; the results before it are kept', async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:notify-crm.e1';
      const circular: Record<string, unknown> = { status: 200 };
      circular.self = circular;
      const steps = await createStepTools({ redis: client, stepsKey });
      await steps.run('before', async () => 'done');
      for (const [id, result] of Object.entries({ circular, bigint: 1n, fn: () => 1 })) {
        await assert.rejects(
          steps.run(id, async () => result),
          (error) => error instanceof PermanentError && error.message.includes(`step "${id}"`) && error.message.includes('JSON-serializable'),
          id,
        );
      }
      await steps.flush();
      assert.deepEqual(await client.hgetall(stepsKey), { 'run:before': '"done"' });
    } finally {
      await redis.cleanup();
    }
  });

  test("an engine step is stored like a step, apart from the workflow's steps and without beforeRun", async () => {
    const redis = await startRedis();
    try {
      const client = redis.client();
      const stepsKey = 'test:steps:auto-reply.e1';
      const beforeRuns: string[] = [];
      const beforeRun = async (id: string) => void beforeRuns.push(id);
      const steps = await createStepTools({ redis: client, stepsKey, beforeRun });
      assert.equal(await steps.engine('debounce', async () => false), false);
      assert.equal(await steps.run('debounce', async () => 'sent'), 'sent');
      await steps.flush();
      assert.deepEqual(beforeRuns, ['debounce'], 'only the workflow step waited');
      assert.deepEqual(await client.hgetall(stepsKey), { 'engine:debounce': 'false', 'run:debounce': '"sent"' });

      const resumed = await createStepTools({ redis: client, stepsKey, beforeRun });
      assert.equal(await resumed.engine('debounce', async () => true), false, 'the stored result, not a new one');
    } finally {
      await redis.cleanup();
    }
  });
});

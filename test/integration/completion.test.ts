import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { doneKey, laneKey, phoneMemoryKey, shardOwnerKey, DISPATCHED_FIELD, EVENTS_QUEUE } from '@replyflow/shared';
import { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { defineEnqueueScript } from '../../apps/ingest/src/enqueue-script.js';
import { carriedTurn, completionOf, installCompletion, type DispatchFinish } from '../../apps/worker/src/engine/completion.js';
import type { LaneExit } from '../../apps/worker/src/engine/lanes.js';
import { loadFixture } from '../helpers/fixtures.js';
import { useRedisServer } from '../helpers/redis-server.js';
import { redisSnapshot } from '../helpers/redis-snapshot.js';

/** What differs by nature between the two prefixes compared: times, lock tokens and the stall check's stamp. */
const SNAPSHOT = { timeFields: ['timestamp', 'processedOn', 'finishedOn'], zsetScores: false, skipStrings: /(:lock|stalled-check)$/ };
const PHONE = '447700900001';
const OTHER_PHONE = '447700900002';
const payloadJson = JSON.stringify(loadFixture('incoming-text').json);
/** Job data as the ingest writes it (event-store.ts): phone and direction first. */
const dataOf = (phone: string) => `{"phone":"${phone}","incoming":true,"receivedAt":1800000000000,"traceId":"trace","payload":${payloadJson}}`;

/** The dispatch of an event that ran no workflow: it only leaves its intake lane. */
const finishOf = (prefix: string, job: Job): DispatchFinish => ({ prefix, dedupeTtlSeconds: 60, phone: job.data.phone, joinedByTurn: [], workflowExits: [] });

/** Runs a Worker on `connection`, one job at a time, until `jobs` of them completed or failed. */
async function work(connection: Redis, prefix: string, jobs: number, processor: (job: Job) => Promise<unknown>): Promise<void> {
  const worker = new Worker(EVENTS_QUEUE, processor, { connection, prefix, concurrency: 1 });
  let settled = 0;
  await new Promise<void>((resolve) => {
    const count = () => ++settled === jobs && resolve();
    worker.on('completed', count);
    worker.on('failed', count);
  });
  await worker.close();
}

describe("BullMQ's completion with the dispatcher's finishing and the next turn (apps/worker/src/engine/completion.ts)", () => {
  const redisServer = useRedisServer();
  const connection = () => redisServer.client.duplicate({ maxRetriesPerRequest: null });
  /** A shard's `events` queue on a connection with the completion script, and the ingest's script to fill it. */
  const openShard = async (prefix: string) => {
    const redis = redisServer.client;
    const client = connection();
    installCompletion(client);
    const queue = new Queue(EVENTS_QUEUE, { connection: client, prefix });
    await queue.waitUntilReady();
    await redis.set(shardOwnerKey(prefix), '1');
    return { redis, client, queue, enqueue: defineEnqueueScript(redis) };
  };

  test("leaves every other completion and failure exactly as BullMQ's own script does (guards BullMQ upgrades)", async () => {
    const plain = connection();
    const installed = connection();
    installCompletion(installed);
    for (const [prefix, client] of [['a', plain], ['b', installed]] as const) {
      const queue = new Queue(EVENTS_QUEUE, { connection: client, prefix });
      await queue.add('kept', { n: 1 }, { jobId: 'j1' });
      await queue.add('removed', { n: 2 }, { jobId: 'j2', removeOnComplete: true });
      await queue.add('failed', { n: 3 }, { jobId: 'j3' });
      await work(client, prefix, 3, async (job) => {
        if (job.name === 'failed') throw new Error('no');
        return { answer: job.data.n };
      });
      await queue.close();
    }
    const a = await redisSnapshot(redisServer.client, 'a', SNAPSHOT);
    assert.deepEqual(await redisSnapshot(redisServer.client, 'b', SNAPSHOT), a);
    assert.equal((a[':events:j1'] as { fields: Record<string, string> }).fields.returnvalue, '{"answer":1}', 'the comparison saw the return value');
    plain.disconnect();
    installed.disconnect();
  });

  test("a Completion leaves the lanes, promotes a parked next event, and hands the job BullMQ fetches its turn", async () => {
    const prefix = 'c';
    const { redis, client, queue, enqueue } = await openShard(prefix);
    for (const [id, phone] of [['e1', PHONE], ['e2', PHONE], ['e3', OTHER_PHONE]]) assert.equal(await enqueue(prefix, 1, id, phone, dataOf(phone)), id);
    // e2 parked, as a job that found e1 ahead of it: only e1's leaving brings it back within the test.
    await redis.lrem(queue.keys.wait!, 0, 'e2');
    await redis.zadd(queue.keys.delayed!, (Date.now() + 60_000) * 0x1000, 'e2');
    // e1 also ran `forward` inline, which stored a step.
    const forwardLane = laneKey(prefix, 'forward', PHONE);
    const forwardSteps = `${prefix}:steps:forward.e1`;
    await redis.zadd(forwardLane, 1, 'forward.e1');
    await redis.hset(forwardSteps, 'post', '{}');
    const forwardExit: LaneExit = { queue, lane: forwardLane, member: 'forward.e1', field: 'forward', stepsKey: forwardSteps, steps: 'drop' };
    const turns: Record<string, unknown> = {};
    const order: string[] = [];
    await work(client, prefix, 3, async (job) => {
      turns[job.id!] = carriedTurn(job);
      order.push(job.id!);
      return completionOf({ ...finishOf(prefix, job), workflowExits: job.id === 'e1' ? [forwardExit] : [] });
    });
    assert.deepEqual(order, ['e1', 'e3', 'e2'], 'e2 ran once e1 had left, long before its delay');
    assert.equal(turns.e1, undefined, 'the first job came from BullMQ alone');
    assert.deepEqual(turns.e3, ['head', 1], "e3 came with e1's completion, as its lane's head and its phone's first contact");
    // e1 took no turn here (no dispatcher ran it), so e2's is its phone's first.
    assert.deepEqual(turns.e2, ['head', 1], "e2 came with e3's, as its lane's head once e1 had left");
    assert.equal(await redis.get(phoneMemoryKey(prefix, PHONE)), 'e2');
    for (const phone of [PHONE, OTHER_PHONE]) assert.deepEqual(await redis.zrange(laneKey(prefix, EVENTS_QUEUE, phone), 0, -1), [], 'every event left its lane');
    for (const id of ['e1', 'e2', 'e3']) assert.equal(await redis.hget(doneKey(prefix, id), DISPATCHED_FIELD), '1');
    assert.equal(await redis.hget(doneKey(prefix, 'e1'), 'forward'), '1', 'the workflow finished inline is recorded');
    assert.deepEqual([await redis.zcard(forwardLane), await redis.exists(forwardSteps)], [0, 0], 'and left its lane, its steps dropped');
    assert.equal(await redis.exists(`${prefix}:events:e1`, `${prefix}:events:e2`, `${prefix}:events:e3`), 0, 'BullMQ completed all three');
    const published = (await redis.xrange(queue.keys.events!, '-', '+')).map(([, fields]) => fields).filter((f) => f[1] === 'completed');
    assert.deepEqual(published.map((f) => f[f.indexOf('returnvalue') + 1]), ['null', 'null', 'null'], 'the Completion is neither stored nor published');
    await queue.close();
    client.disconnect();
  });

  test('a Completion whose lock another worker holds leaves nothing, and BullMQ reports the lost lock', async () => {
    const prefix = 'd';
    const { redis, client, queue, enqueue } = await openShard(prefix);
    assert.equal(await enqueue(prefix, 1, 'e1', PHONE, dataOf(PHONE)), 'e1');
    const lane = laneKey(prefix, EVENTS_QUEUE, PHONE);
    const worker = new Worker(
      EVENTS_QUEUE,
      async (job) => {
        await redis.set(`${prefix}:events:${job.id}:lock`, 'another worker');
        return completionOf(finishOf(prefix, job));
      },
      { connection: client, prefix },
    );
    const error = await new Promise<Error>((resolve) => worker.on('error', resolve));
    await worker.close(true);
    assert.match(error.message, /lock/i);
    assert.deepEqual(await redis.zrange(lane, 0, -1), ['e1'], 'still heads its lane');
    assert.equal(await redis.exists(doneKey(prefix, 'e1')), 0, 'no done record');
    await queue.close();
    client.disconnect();
  });
});

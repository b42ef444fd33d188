import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { shardOwnerKey, EVENTS_QUEUE, type EventJobData } from '@replyflow/shared';
import { Queue, Worker } from 'bullmq';
import { defineEnqueueScript, DUPLICATE, FENCED } from '../../apps/ingest/src/enqueue-script.js';
import { loadFixture } from '../helpers/fixtures.js';
import { useRedisServer } from '../helpers/redis-server.js';
import { redisSnapshot } from '../helpers/redis-snapshot.js';

/** The jobs' creation times differ between the two prefixes compared. */
const SNAPSHOT = { timeFields: ['timestamp'], zsetScores: true };
const payload = loadFixture('incoming-text').json;
const data = (phone: string): Omit<EventJobData, 'seq'> => ({ receivedAt: 1_800_000_000_000, traceId: 'trace', payload, phone });
/** The job data as the ingest hands it to the script: JSON without `seq`. */
const dataJson = (phone: string): string => JSON.stringify(data(phone));

describe('one script for claim and enqueue (apps/ingest/src/enqueue-script.ts)', () => {
  const redisServer = useRedisServer();

  test("writes the job exactly as BullMQ's Queue.add does (guards BullMQ upgrades)", async () => {
    const redis = redisServer.client;
    const viaQueue = new Queue<EventJobData>(EVENTS_QUEUE, { connection: redis, prefix: 'a' });
    const viaScript = new Queue<EventJobData>(EVENTS_QUEUE, { connection: redis, prefix: 'b' });
    await Promise.all([viaQueue.waitUntilReady(), viaScript.waitUntilReady()]);
    await redis.set(shardOwnerKey('b'), '1');
    const enqueue = defineEnqueueScript(redis);
    for (const [n, phone] of ['447700900001', '447700900002', '447700900001'].entries()) {
      await viaQueue.add('event', { seq: n + 1, ...data(phone) }, { jobId: `id${n}`, removeOnComplete: true, removeOnFail: false });
      assert.equal(await enqueue('b', 1, `id${n}`, phone, dataJson(phone)), `id${n}`);
    }
    const a = await redisSnapshot(redis, 'a', SNAPSHOT);
    const b = await redisSnapshot(redis, 'b', SNAPSHOT);
    // Our own keys (owner, sequence, lanes) exist only under b; every BullMQ key must match.
    const ours = (name: string) => /^:(owner|seq|lane:)/.test(name);
    const bullmqOfB = Object.fromEntries(Object.entries(b).filter(([name]) => !ours(name)));
    assert.deepEqual(bullmqOfB, a);
    assert.equal((b[':seq'] as { value: string }).value, '3');
    assert.deepEqual((b[':lane:events:447700900001'] as { items: string[] }).items, ['id0', '1', 'id2', '3']);
    const job = await viaScript.getJob('id2');
    assert.equal(job?.data.seq, 3);
    assert.deepEqual(job?.data.payload, payload);
    await Promise.all([viaQueue.close(), viaScript.close()]);
  });

  test('a known event is a duplicate, a shard owned by another count is refused, and a BullMQ worker runs the job', async () => {
    const redis = redisServer.client;
    const enqueue = defineEnqueueScript(redis);
    await redis.set(shardOwnerKey('c'), '2');
    assert.equal(await enqueue('c', 1, 'e1', '447700900003', dataJson('447700900003')), FENCED);
    assert.equal(await redis.exists('c:events:e1', 'c:seq'), 0, 'a refused store writes nothing');
    assert.equal(await enqueue('c', 2, 'e1', '447700900003', dataJson('447700900003')), 'e1');
    assert.equal(await enqueue('c', 2, 'e1', '447700900003', dataJson('447700900003')), DUPLICATE);
    await redis.hset('c:done:e2', '_', '1');
    assert.equal(await enqueue('c', 2, 'e2', '447700900003', dataJson('447700900003')), DUPLICATE, 'the done record answers after the job is gone');
    const seen: EventJobData[] = [];
    const connection = redis.duplicate({ maxRetriesPerRequest: null });
    const worker = new Worker<EventJobData>(EVENTS_QUEUE, async (job) => void seen.push(job.data), { connection, prefix: 'c' });
    await new Promise<void>((resolve) => worker.on('completed', () => resolve()));
    await worker.close();
    connection.disconnect();
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.seq, 1);
    assert.equal(seen[0]!.phone, '447700900003');
    assert.equal(await redis.exists('c:events:e1'), 0, 'removed on completion, as Queue.add asked');
  });
});

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createKeyspace, DEAD_LETTER_QUEUE, EVENTS_QUEUE, shardOfPhone, signatureHeader } from '@replyflow/shared';
import { Queue, Worker } from 'bullmq';
import { loadFixture } from '../helpers/fixtures.js';
import { freePort } from '../helpers/free-port.js';
import { get, post, put } from '../helpers/http.js';
import { startPipeline } from '../helpers/pipeline.js';
import { startProcess, type AppProcess } from '../helpers/processes.js';
import { startReceiver } from '../helpers/receiver.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { waitUntil } from '../helpers/wait.js';

const SECRET = 'admin-cluster-secret';
const PASSWORD = 'pw';
const SHARDS = 3;
const FORWARD_QUEUE = 'forward';
const AUTH = { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` };
const base = loadFixture('incoming-text').json;

interface BoardQueue {
  name: string;
  displayName?: string;
  counts: Record<string, number>;
}

/** Two phones a shard, so that every shard's queues hold something. */
function phonesCoveringShards(): string[] {
  const phones: string[] = [];
  const perShard = new Array<number>(SHARDS).fill(0);
  for (let n = 0; phones.length < 2 * SHARDS; n++) {
    const phone = `4477017${String(n).padStart(5, '0')}`;
    const shard = shardOfPhone(phone, SHARDS);
    if (perShard[shard]! < 2) {
      perShard[shard]! += 1;
      phones.push(phone);
    }
  }
  return phones;
}

async function listQueues(adminPort: number): Promise<BoardQueue[]> {
  const res = await get(`http://127.0.0.1:${adminPort}/api/queues`, AUTH);
  assert.equal(res.status, 200, res.body);
  return res.json.queues as BoardQueue[];
}

describe('queue dashboard on Redis Cluster and sharded queues', () => {
  test('lists every shard\'s queues and the dead letters with the counts Redis holds, and retries a failed job on each master', async (t) => {
    const cluster = await startRedisCluster({ masters: 3, appendonly: false });
    const receiver = await startReceiver(() => ({ status: 400 }));
    const apps: AppProcess[] = [];
    const bullmq: Array<Queue | Worker> = [];
    t.after(async () => {
      // BullMQ's own first: they would log errors once the cluster is gone.
      await Promise.allSettled(bullmq.map((queueOrWorker) => queueOrWorker.close()));
      await Promise.allSettled(apps.map((app) => app.kill()));
      await receiver.close();
      await cluster.cleanup();
    });
    const keyspace = createKeyspace('replyflow', SHARDS, true);
    const connection = cluster.client({ redisOptions: { maxRetriesPerRequest: null }, enableAutoPipelining: false });
    const openQueue = (prefix: string, name: string) => {
      const queue = new Queue(name, { connection, prefix });
      bullmq.push(queue);
      return queue;
    };

    const env = { ...cluster.env(), QUEUE_SHARDS: String(SHARDS), HOST: '127.0.0.1', METRICS_PORT: '0' };
    const [port, adminPort] = await Promise.all([freePort(), freePort()]);
    apps.push(
      await startProcess('ingest', { ...env, PORT: String(port), WEBHOOK_SECRET: SECRET, ADMIN_PASSWORD: PASSWORD, ADMIN_PORT: String(adminPort) }),
    );
    const boardQueues = (onPort = adminPort) => listQueues(onPort);
    const boardName = (prefix: string, name: string) => (prefix === keyspace.global ? name : `${prefix}:${name}`);

    // Before any worker or event: every shard's intake and the dead letters, under their hash-tagged prefixes.
    const atStart = await boardQueues();
    assert.deepEqual(
      atStart.map((queue) => queue.name).sort(),
      [...keyspace.shards.map((prefix) => boardName(prefix, EVENTS_QUEUE)), DEAD_LETTER_QUEUE].sort(),
    );
    assert.deepEqual(
      atStart.map((queue) => queue.displayName ?? queue.name).sort(),
      [...keyspace.shards.map((_, shard) => `${EVENTS_QUEUE}@${shard}`), DEAD_LETTER_QUEUE].sort(),
    );

    // A forward that answers 400 is permanent: each event is dead-lettered at once.
    const worker = await startProcess('worker', { ...env, FORWARD_URL: receiver.url });
    apps.push(worker);
    const phones = phonesCoveringShards();
    for (const [n, phone] of phones.entries()) {
      const body = JSON.stringify({ ...base, phone_number: phone, user_last_message_time: 1_900_000_000 + n });
      const res = await post(`http://127.0.0.1:${port}/webhooks/notifyer`, body, {
        'content-type': 'application/json',
        'x-webhook-signature': signatureHeader('token', body, SECRET),
      });
      assert.equal(res.status, 202, res.body);
    }
    const deadLetters = openQueue(keyspace.global, DEAD_LETTER_QUEUE);
    await waitUntil(
      async () => ((await deadLetters.getJobCounts('waiting')).waiting === phones.length ? true : undefined),
      20_000,
      () => 'the events never all reached the dead-letter queue',
      100,
    );
    // The real worker dead-letters any job BullMQ fails, so it stops before this test fails jobs of its own.
    await worker.stop();

    // One failed forward job in every shard: the shards' hash tags put them on three different masters.
    const masters = await Promise.all(keyspace.shards.map((prefix) => cluster.masterOfKey(`${prefix}:${FORWARD_QUEUE}:id`)));
    assert.equal(new Set(masters.map((node) => node.port)).size, SHARDS, 'the shards do not spread over the masters');
    const runs = new Map<string, number>();
    for (const prefix of keyspace.shards) {
      const failingOnce = new Worker(
        FORWARD_QUEUE,
        async (job) => {
          runs.set(job.id!, (runs.get(job.id!) ?? 0) + 1);
          if (runs.get(job.id!) === 1) throw new Error('receiver answered 503');
        },
        { connection, prefix },
      );
      bullmq.push(failingOnce);
      await openQueue(prefix, FORWARD_QUEUE).add('forward', { probe: true }, { jobId: `probe-${prefix}`, attempts: 1 });
    }
    const forwardQueues = keyspace.shards.map((prefix) => openQueue(prefix, FORWARD_QUEUE));
    await waitUntil(
      async () => ((await Promise.all(forwardQueues.map((queue) => queue.getJobCounts('failed')))).every((c) => c.failed === 1) ? true : undefined),
      10_000,
      () => 'the probe jobs never failed',
    );

    // Every queue on the board, with the counts that Redis holds for it. The forward queues hold no
    // meta key at the ingest's start: they show up once CLIENT LIST, asked at most every 2 s, finds their workers.
    const expected = [
      ...keyspace.shards.flatMap((prefix) => [EVENTS_QUEUE, FORWARD_QUEUE].map((name) => ({ prefix, name }))),
      { prefix: keyspace.global, name: DEAD_LETTER_QUEUE },
    ];
    let listed: BoardQueue[] = [];
    await waitUntil(
      async () => {
        listed = await boardQueues();
        return expected.every(({ prefix, name }) => listed.some((queue) => queue.name === boardName(prefix, name))) || undefined;
      },
      15_000,
      () => `not every queue is listed: ${listed.map((queue) => queue.name).join(', ')}`,
      250,
    );
    for (const { prefix, name } of expected) {
      const onBoard = listed.find((queue) => queue.name === boardName(prefix, name))!;
      assert.deepEqual(onBoard.counts, await openQueue(prefix, name).getJobCounts(), `${onBoard.name}: counts differ from Redis`);
    }
    assert.equal(listed.find((queue) => queue.name === DEAD_LETTER_QUEUE)?.counts.waiting, phones.length);
    for (const prefix of keyspace.shards) {
      assert.equal(listed.find((queue) => queue.name === boardName(prefix, FORWARD_QUEUE))?.counts.failed, 1);
    }

    // bull-board's retry runs BullMQ's scripts through the Cluster client, each on its shard's master.
    for (const [shard, prefix] of keyspace.shards.entries()) {
      const jobId = `probe-${prefix}`;
      const res = await put(`http://127.0.0.1:${adminPort}/api/queues/${encodeURIComponent(boardName(prefix, FORWARD_QUEUE))}/${encodeURIComponent(jobId)}/retry`, AUTH);
      assert.equal(res.status, 204, res.body);
      await waitUntil(
        async () => ((await forwardQueues[shard]!.getJobState(jobId)) === 'completed' ? true : undefined),
        10_000,
        () => `${jobId} did not run again after the retry`,
      );
      assert.equal(runs.get(jobId), 2);
    }

    // With no worker connected, a dashboard started now finds the forward queues by the SCAN of every master.
    for (const failingOnce of bullmq.filter((closable) => closable instanceof Worker)) await failingOnce.close();
    const laterAdminPort = await freePort();
    apps.push(
      await startProcess('ingest', { ...env, PORT: '0', WEBHOOK_SECRET: SECRET, ADMIN_PASSWORD: PASSWORD, ADMIN_PORT: String(laterAdminPort) }),
    );
    let found: string[] = [];
    await waitUntil(
      async () => {
        found = (await boardQueues(laterAdminPort)).map((queue) => queue.name);
        return keyspace.shards.every((prefix) => found.includes(boardName(prefix, FORWARD_QUEUE))) || undefined;
      },
      5_000,
      () => `the SCAN at start did not find every forward queue: ${found.join(', ')}`,
      100,
    );
  });

  test('with QUEUE_SHARDS=2 on one Redis: the shards\' intake queues hold the waiting events', async (t) => {
    const adminPort = await freePort();
    const p = await startPipeline({ worker: false, ingestEnv: { QUEUE_SHARDS: '2', ADMIN_PASSWORD: PASSWORD, ADMIN_PORT: String(adminPort) } });
    t.after(() => p.stop());
    const keyspace = createKeyspace('replyflow', 2, false);
    const phone = '447701800001';
    const body = { ...base, phone_number: phone, user_last_message_time: 1_910_000_000 };
    assert.equal((await p.send(body)).status, 202);
    const listed = await listQueues(adminPort);
    assert.deepEqual(listed.map((queue) => queue.name).sort(), [...keyspace.shards.map((prefix) => `${prefix}:${EVENTS_QUEUE}`), DEAD_LETTER_QUEUE].sort());
    const waiting = keyspace.shards.map((prefix) => listed.find((queue) => queue.name === `${prefix}:${EVENTS_QUEUE}`)!.counts.waiting);
    assert.deepEqual(waiting, keyspace.shards.map((_, shard) => (shard === shardOfPhone(phone, 2) ? 1 : 0)));
  });
});

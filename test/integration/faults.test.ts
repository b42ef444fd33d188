import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { sleep } from '../helpers/wait.js';

// Short locks, so a dead or frozen worker's jobs are taken over in seconds, not a minute.
const FAST_LOCKS = { JOB_LOCK_MS: '1500' };
let nextTime = 1_840_000_000;
const fresh = (patch: Record<string, unknown> = {}) => ({ ...withMessageTime(loadFixture('incoming-text').json, nextTime++), ...patch });

describe('worker faults', () => {
  test('kill -9 mid-forward: another worker delivers the event once the lock expires', async () => {
    const p = await startPipeline({
      worker: false,
      receiver: (_req, count) => (count === 1 ? { status: 200, delayMs: 30_000 } : { status: 200 }),
      workerEnv: FAST_LOCKS,
    });
    try {
      const first = await p.startWorker();
      const { json } = await p.send(fresh());
      await p.receiver.waitFor(1, 10_000);
      await first.kill();
      const killedAt = Date.now();
      await p.startWorker();
      const [, retry] = await p.receiver.waitFor(2, 15_000);
      console.log(`taken over ${retry!.at - killedAt} ms after the kill`);
      assert.equal(retry!.json.id, json.id);
      assert.equal(retry!.headers['webhook-id'], json.id);
      await sleep(1_000);
      assert.equal(p.receiver.requests.length, 2);
    } finally {
      await p.stop();
    }
  });

  test('a worker frozen past its lock: its job is taken over, and it sends nothing more when it wakes', async () => {
    const p = await startPipeline({
      worker: false,
      receiver: (_req, count) => (count === 1 ? { status: 200, delayMs: 2_000 } : { status: 200 }),
      workerEnv: FAST_LOCKS,
    });
    try {
      const frozen = await p.startWorker();
      const phone = '447700900501';
      const { json } = await p.send(fresh({ phone_number: phone }));
      await p.receiver.waitFor(1, 10_000);
      frozen.signal('SIGSTOP');
      await p.startWorker();
      await p.receiver.waitFor(2, 15_000);
      frozen.signal('SIGCONT');
      const next = await p.send(fresh({ phone_number: phone }));
      await p.receiver.waitFor(3, 10_000);
      await sleep(2_000);
      const ids = p.receiver.requests.map((r) => r.headers['webhook-id']);
      assert.deepEqual(ids, [json.id, json.id, next.json.id], 'the repeat carries the same webhook-id; nothing else repeats');
    } finally {
      await p.stop();
    }
  });

  test('an endpoint that resets, answers garbage or hangs costs no worker slot', async () => {
    const garbage = createServer((socket) => socket.end('NOT HTTP AT ALL\r\n\r\n'));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    const garbageUrl = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}/hook`;
    const p = await startPipeline({
      worker: false,
      receiver: (req) => (req.json.data.text === 'reset' ? { status: 200, destroy: true } : req.json.data.text === 'hang' ? { status: 200, delayMs: 60_000 } : { status: 200 }),
      workerEnv: { WORKER_CONCURRENCY: '2', FORWARD_TIMEOUT_MS: '500', MAX_ATTEMPTS: '2', BACKOFF_BASE_MS: '100' },
    });
    const deadLettered = (log: { msg?: unknown }) => typeof log.msg === 'string' && log.msg.includes('dead-letter queue');
    try {
      // One worker at a time, so each failure meets the worker it is meant for
      // (two at once share the jobs as they please): first an endpoint that
      // answers garbage, until its event is given up...
      const garbageWorker = await p.startWorker({ FORWARD_URL: garbageUrl });
      await p.send(fresh({ last_message_of_user: 'garbage' }));
      await garbageWorker.waitForLog(deadLettered, 10_000);
      await garbageWorker.stop();
      // ...then one that resets the connection and one that never answers.
      const worker = await p.startWorker();
      for (const text of ['reset', 'hang', 'hang', 'reset']) await p.send(fresh({ last_message_of_user: text }));
      await sleep(3_000);
      const started = Date.now();
      for (let i = 0; i < 10; i++) await p.send(fresh({ phone_number: `4477009006${String(i).padStart(2, '0')}` }));
      await sleep(1_500);
      const delivered = p.receiver.requests.filter((r) => r.at >= started && !['reset', 'hang'].includes(r.json.data.text));
      assert.equal(delivered.length, 10, 'the worker still has its slots');
      const kinds = (app: typeof worker) => new Set(app.logs().map((log) => log.kind).filter(Boolean));
      assert.deepEqual([...kinds(garbageWorker)], ['network'], 'garbage is a network error');
      assert.ok(kinds(worker).has('timeout') && kinds(worker).has('network'), `error kinds seen: ${[...kinds(worker)].join(',')}`);
    } finally {
      await p.stop();
      garbage.close();
    }
  });
});

describe('Redis faults', () => {
  test('Redis refusing writes (maxmemory, noeviction): 503, never a 2xx for an event it could not store', async () => {
    const p = await startPipeline({ worker: false, redis: { maxmemory: '3mb' } });
    try {
      const client = p.redis.client();
      // Well over the limit, not just at it: used memory sways by kilobytes
      // (client buffers come and go), which let an event in when Redis had
      // been filled to within a few bytes of its limit.
      for (let i = 0; i < 40; i++) await client.set(`filler:${i}`, 'x'.repeat(100_000)).catch(() => {});
      const used = Number(/used_memory:(\d+)/.exec(await client.info('memory'))?.[1]);
      await client.config('SET', 'maxmemory', String(Math.floor(used / 2)));
      assert.ok(await client.set('probe', 'x').then(() => false, () => true), 'Redis refuses writes');
      const refused = await p.send(fresh());
      assert.equal(refused.status, 503, refused.body);
      assert.ok(Number(refused.headers['retry-after']) > 0);
      assert.equal((await client.keys('replyflow:events:[0-9a-f]*')).length, 0);
      await client.del(...(await client.keys('filler:*')));
      await client.config('SET', 'maxmemory', '3mb');
      assert.equal((await p.send(fresh())).status, 202);
    } finally {
      await p.stop();
    }
  });
});

describe('load with a worker killed and Redis restarted', () => {
  // npm run test:faults raises FAULT_EVENTS for a longer run.
  const total = Number(process.env.FAULT_EVENTS ?? 3_000);
  test(`${total} events: every acknowledged event reaches the receiver`, async () => {
    const p = await startPipeline({ workerEnv: FAST_LOCKS });
    try {
      await p.startWorker();
      const acknowledged = new Set<string>();
      let unavailable = 0;
      let next = 0;
      const client = async () => {
        while (next < total) {
          const n = next++;
          const body = fresh({ phone_number: `4477012${String(n % 100).padStart(5, '0')}` });
          for (let tries = 0; ; tries++) {
            const res = await p.send(body).catch(() => undefined);
            if (res && (res.status === 202 || res.status === 200)) {
              acknowledged.add(res.json.id);
              break;
            }
            unavailable++;
            assert.ok(tries < 300, 'the ingest never recovered');
            await sleep(50); // Notifyer retries too, only slower
          }
          if (n === Math.floor(total / 3)) void p.worker!.kill();
          if (n === Math.floor(total * 0.6)) void p.redis.restart();
        }
      };
      await Promise.all(Array.from({ length: 16 }, client));
      const deadline = Date.now() + 60_000 + total * 5;
      while (Date.now() < deadline) {
        const delivered = new Set(p.receiver.requests.map((r) => r.json.id as string));
        if ([...acknowledged].every((id) => delivered.has(id))) break;
        await sleep(250);
      }
      const delivered = new Set(p.receiver.requests.map((r) => r.json.id as string));
      const lost = [...acknowledged].filter((id) => !delivered.has(id));
      const twice = p.receiver.requests.length - delivered.size;
      console.log(`acknowledged ${acknowledged.size}, lost ${lost.length}, delivered twice ${twice}, answers retried ${unavailable}`);
      assert.equal(acknowledged.size, total);
      assert.equal(lost.length, 0);
    } finally {
      await p.stop();
    }
  });
});

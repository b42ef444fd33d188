import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { get } from '../helpers/http.js';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { metricValue, startPipeline } from '../helpers/pipeline.js';
import { runToExit, startProcess } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis-server.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const event = (time: number) => withMessageTime(loadFixture('incoming-image').json, time);

describe('Redis trouble', () => {
  test('Redis down: 503 with Retry-After within 1 s, readyz 503, then recovery without a restart', async () => {
    const p = await startPipeline();
    try {
      assert.equal((await p.send(event(1))).status, 202);
      await p.receiver.waitFor(1, 10_000);

      await p.redis.stop();
      const started = Date.now();
      const refused = await p.send(event(2));
      assert.ok(Date.now() - started < 1_500, `answered after ${Date.now() - started} ms`);
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error, 'unavailable');
      assert.ok(Number(refused.headers['retry-after']) > 0);
      const readyUrl = p.webhookUrl.replace('/webhooks/notifyer', '/readyz');
      await waitUntil(async () => (await get(readyUrl)).status === 503 || undefined, 5_000, () => 'readyz stayed 200');
      assert.equal(metricValue((await get(p.ingestMetricsUrl)).body, 'replyflow_redis_up'), 0);

      await p.redis.restart();
      await waitUntil(async () => (await get(readyUrl)).status === 200 || undefined, 10_000, () => 'readyz never recovered');
      const accepted = await p.send(event(3));
      assert.equal(accepted.status, 202);
      const delivered = await p.receiver.waitFor(2, 15_000);
      assert.equal(delivered[1]!.json.id, accepted.json.id);
    } finally {
      await p.stop();
    }
  });

  test('Redis hung (SIGSTOP): 503 within about a second, never a hang', async () => {
    const p = await startPipeline({ worker: false });
    try {
      p.redis.pause();
      const started = Date.now();
      const res = await p.send(event(10));
      const elapsed = Date.now() - started;
      assert.equal(res.status, 503);
      assert.ok(elapsed < 1_500, `answered after ${elapsed} ms`);
      p.redis.resume();
      await sleep(200);
      // The event that timed out may or may not have been stored; either way a redelivery is safe.
      assert.ok([200, 202].includes((await p.send(event(10))).status));
    } finally {
      p.redis.resume();
      await p.stop();
    }
  });

  test('acknowledged events survive a Redis restart (append-only file) and are delivered once', async () => {
    const p = await startPipeline({ worker: false });
    try {
      const ids = [];
      for (let i = 0; i < 20; i++) {
        const res = await p.send(event(100 + i));
        assert.equal(res.status, 202, res.body);
        ids.push(res.json.id);
      }
      await p.redis.restart();
      await p.startWorker();
      const delivered = await p.receiver.waitFor(20, 20_000);
      await sleep(300);
      assert.equal(p.receiver.requests.length, 20);
      assert.deepEqual(new Set(delivered.map((r) => r.json.id)), new Set(ids));
    } finally {
      await p.stop();
    }
  });
});

describe('a Redis that may evict events', () => {
  test('both processes warn; the ingest refuses to run with REQUIRE_SAFE_REDIS=true', async () => {
    const redis = await startRedis({ maxmemoryPolicy: 'allkeys-lru' });
    try {
      const env = { REDIS_URL: redis.url, HOST: '127.0.0.1', WEBHOOK_SECRET: 's', PORT: '0', METRICS_PORT: '0' };
      const refused = await runToExit('ingest', { ...env, REQUIRE_SAFE_REDIS: 'true' }, 10_000);
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, /noeviction/);
      for (const name of ['ingest', 'worker'] as const) {
        const app = await startProcess(name, env);
        const warning = await app.waitForLog((log) => log.level === 40 && /noeviction/.test(String(log.msg)), 5_000);
        assert.equal(warning.policy, 'allkeys-lru');
        await app.stop();
      }
    } finally {
      await redis.cleanup();
    }
  });
});

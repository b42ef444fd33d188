import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { RateLimiter, waitForSlot } from '../../apps/worker/src/engine/rate-limit.js';
import { exited, spawnTracked } from '../helpers/child.js';
import { useRedisServer } from '../helpers/redis-server.js';
import { repoRoot } from '../helpers/repo-root.js';

const LIMIT = 40;
const CLIENT = join(repoRoot, 'test', 'fixtures', 'rate-limit-client.ts');

/** Runs the fixture client in its own Node process and returns the times its slots were used. */
async function runClient(redisUrl: string, key: string, concurrency: number, runMs: number): Promise<number[]> {
  const child = await spawnTracked(
    process.execPath,
    ['--import', 'tsx', CLIENT, redisUrl, key, String(LIMIT), String(concurrency), String(runMs)],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await exited(child);
  assert.equal(status.code, 0, `rate-limit client failed: ${stderr}`);
  return JSON.parse(stdout) as number[];
}

/** The most events in any half-open interval [t, t + widthMs) starting at an event. */
function maxInWindow(sorted: number[], widthMs: number): number {
  let max = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]! < sorted[start]! + widthMs) end++;
    max = Math.max(max, end - start);
  }
  return max;
}

describe('rate limiter (GCRA in Redis)', () => {
  const redisServer = useRedisServer();

  test('a limit of 0 is unlimited and never waits', async () => {
    const client = redisServer.client;
    const limiter = new RateLimiter(client, 'replyflow:ratelimit:unlimited', 0);
    for (let i = 0; i < 100; i++) assert.equal(await limiter.acquire(), 0);
    assert.equal(await client.exists('replyflow:ratelimit:unlimited'), 0);
  });

  test('rapid acquires reserve slots one interval apart, two after a cold one', async () => {
    const client = redisServer.client;
    const limiter = new RateLimiter(client, 'replyflow:ratelimit:rapid', 10);
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) waits.push(await limiter.acquire());
    const expected = [0, 204, 306, 408, 510];
    waits.forEach((wait, i) => assert.ok(Math.abs(wait - expected[i]!) <= 15, `wait ${i} was ${wait} ms: ${waits}`));
    const ttl = await client.pttl('replyflow:ratelimit:rapid');
    assert.ok(ttl > 0 && ttl <= 700, `key expires after its horizon, pttl ${ttl}`);
  });

  test('every limit leaves its bound room for late arrivals and keeps 95% of its rate', async () => {
    const client = redisServer.client;
    for (const limit of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 20, 40, 100]) {
      const key = `replyflow:ratelimit:spacing-${limit}`;
      const limiter = new RateLimiter(client, key, limit);
      await limiter.acquire();
      const firstTat = Number(await client.get(key));
      await limiter.acquire();
      const intervalUs = Number(await client.get(key)) - firstTat;
      // The contract: no 1-second interval holds more than the limit plus 10%.
      const maxInOneSecond = Math.floor((limit * 11) / 10);
      const slackMs = (maxInOneSecond * intervalUs - 1_000_000) / 1000;
      assert.ok(slackMs >= 25, `at ${limit}/s, ${maxInOneSecond + 1} slots span only ${slackMs.toFixed(1)} ms over a second`);
      // Under a backlog any 10 s holds at least this many: 95% of 10 × limit, but at 1/s, where no
      // pace below the limit gets 10 into every 10 s.
      const leastInTenSeconds = Math.floor(10_000_000 / intervalUs);
      assert.ok(leastInTenSeconds >= 9.5 * limit || (limit === 1 && leastInTenSeconds === 9), `at ${limit}/s, slots are ${intervalUs} µs apart`);
    }
  });

  test('a waiter that wakes well past its slot takes a new one', async () => {
    const limiter = new RateLimiter(redisServer.client, 'replyflow:ratelimit:late', 5);
    await limiter.acquire();
    const waits: number[] = [];
    const waiting = waitForSlot(limiter, (ms) => waits.push(ms));
    while (waits.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // Its sleep has started: hold the event loop until 50 ms past the slot, as a GC pause would.
    const until = performance.now() + waits[0]! + 50;
    while (performance.now() < until);
    await waiting;
    assert.equal(waits.length, 2, `waits ${waits}`);
  });

  test('two processes with 16 loops each share the limit: ±5% over 10 s, ≤ limit + 10% in any second', async () => {
    const key = 'replyflow:ratelimit:forward';
    const runs = await Promise.all([1, 2].map(() => runClient(redisServer.server.url, key, 16, 11_200)));
    assert.ok(runs.every((times) => times.length > 0), 'both processes got slots');
    const times = runs.flat().sort((a, b) => a - b);

    const first = times[0]!;
    const inTenSeconds = times.filter((t) => t >= first + 1_000 && t < first + 11_000).length;
    const rateErrorPct = ((inTenSeconds - 10 * LIMIT) / (10 * LIMIT)) * 100;
    const maxPerSecond = maxInWindow(times, 1_000);
    console.log(
      `limit ${LIMIT}/s: ${inTenSeconds} in 10 s (rate error ${rateErrorPct.toFixed(2)}%), ` +
        `max ${maxPerSecond} in a sliding 1 s, per process ${runs.map((r) => r.length).join(' + ')}`,
    );

    assert.ok(Math.abs(rateErrorPct) <= 5, `rate error ${rateErrorPct.toFixed(2)}%`);
    assert.ok(maxPerSecond <= LIMIT * 1.1, `max ${maxPerSecond} in a sliding 1 s`);
  });
});

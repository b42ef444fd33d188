import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { RateLimiter } from '../../apps/worker/src/engine/rate-limit.js';
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

  test('rapid acquires reserve slots one interval apart', async () => {
    const client = redisServer.client;
    const limiter = new RateLimiter(client, 'replyflow:ratelimit:rapid', 10);
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) waits.push(await limiter.acquire());
    waits.forEach((wait, i) => assert.ok(Math.abs(wait - i * 100) <= 15, `wait ${i} was ${wait} ms: ${waits}`));
    const ttl = await client.pttl('replyflow:ratelimit:rapid');
    assert.ok(ttl > 0 && ttl <= 600, `key expires after its horizon, pttl ${ttl}`);
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

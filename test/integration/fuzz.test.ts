import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { signatureHeader } from '@replyflow/shared';
import { get, post } from '../helpers/http.js';
import { loadFixture } from '../helpers/fixtures.js';
import { metricValue, SECRET, startPipeline } from '../helpers/pipeline.js';
import { repoRoot } from '../helpers/repo-root.js';

const LIMIT = 64 * 1024;
const base = loadFixture('incoming-text').json;
const fields = Object.keys(base);

interface Case {
  kind: string;
  body: Buffer;
  contentType?: string;
  signed: boolean;
}

// npm run test:faults raises FUZZ_ROUNDS for a longer run, long enough to check memory.
const FUZZ_ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 1);
const MEMORY_CHECK_ROUNDS = 3;
const HEAP_AFTER_GC = `--expose-gc --import ${join(repoRoot, 'test/fixtures/heap-after-gc.mjs')}`;
const sign = (body: Buffer) => signatureHeader('token', body, SECRET);
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const nested = (depth: number) => Buffer.from('['.repeat(depth) + ']'.repeat(depth));
const padTo = (size: number) => json({ ...base, note: 'x'.repeat(Math.max(0, size - JSON.stringify({ ...base, note: '' }).length)) });

function cases(): Case[] {
  const out: Case[] = [];
  const add = (kind: string, body: Buffer, extra: Partial<Case> = {}) => out.push({ kind, body, signed: true, contentType: 'application/json', ...extra });
  for (let i = 0; i < 300; i++) add('random bytes', randomBytes(1 + (i * 37) % 4000));
  const text = JSON.stringify(base);
  for (let i = 0; i < 300; i++) add('truncated json', Buffer.from(text.slice(0, (i * 13) % text.length)));
  for (const depth of [10, 100, 1000, 10_000, 30_000]) add('deeply nested', nested(depth));
  for (const depth of [50, 5_000]) add('deeply nested field', Buffer.from(`{"phone_number":"447700900123","referral":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`));
  for (const size of [LIMIT - 10, LIMIT, LIMIT + 1, LIMIT * 2]) add('near the limit', padTo(size));
  const wrongValues = [null, true, 0, -1, 1.5, '', 'x', [], {}, [1], { a: 1 }, 1e308, '𝄞'];
  for (const field of fields) for (const value of wrongValues) add('wrong type', json({ ...base, [field]: value }));
  for (const key of ['__proto__', 'constructor', 'prototype']) {
    add('prototype keys', Buffer.from(`{"${key}":{"polluted":true},${text.slice(1)}`));
    add('prototype keys', Buffer.from(`${text.slice(0, -1)},"referral":{"${key}":{"polluted":true}}}`));
  }
  for (let i = 0; i < 100; i++) {
    add('invalid utf-8', Buffer.concat([Buffer.from(text.slice(0, 40)), Buffer.from([0xc3 + (i % 3), 0x28, 0xff, 0xfe]), Buffer.from(text.slice(40))]));
  }
  for (const contentType of ['text/plain', 'application/xml', 'application/json-patch+json', '', 'multipart/form-data; boundary=x', undefined]) {
    for (let i = 0; i < 20; i++) add('content type', Buffer.from(text), { contentType });
  }
  for (let i = 0; i < 100; i++) add('unsigned', Buffer.from(text), { signed: false });
  fc.sample(fc.jsonValue(), { numRuns: 600, seed: 42 }).forEach((value) => add('arbitrary json', json(value)));
  fc.sample(fc.dictionary(fc.constantFrom(...fields), fc.jsonValue()), { numRuns: 300, seed: 7 }).forEach((patch) =>
    add('mutated payload', json({ ...base, ...patch })),
  );
  return out;
}

describe('hostile input', () => {
  const memory = FUZZ_ROUNDS >= MEMORY_CHECK_ROUNDS ? '; memory stays flat' : '';
  test(`thousands of bad bodies: always a 4xx (2xx when valid), never a 5xx or a dropped connection${memory}`, async () => {
    const p = await startPipeline({ worker: false, ingestEnv: { BODY_LIMIT: '64kb', NODE_OPTIONS: HEAP_AFTER_GC } });
    try {
      const all = cases();
      assert.ok(all.length >= 2_000, `only ${all.length} cases`);
      const rss = async () => metricValue((await get(p.ingestMetricsUrl)).body, 'process_resident_memory_bytes')!;
      let reports = 0;
      const liveMemory = async () => {
        const report = ++reports;
        p.ingest.signal('SIGUSR2');
        const log = await p.ingest.waitForLog((l) => l.msg === 'heap after gc' && l.report === report, 10_000);
        return (log.heapUsed as number) + (log.external as number);
      };
      const statuses = new Map<string, Map<number, number>>();
      const runAll = async () => {
        for (let i = 0; i < all.length; i += 20) {
          await Promise.all(
            all.slice(i, i + 20).map(async (c) => {
              const headers: Record<string, string> = {};
              if (c.contentType !== undefined) headers['content-type'] = c.contentType;
              if (c.signed) headers['x-webhook-signature'] = sign(c.body);
              const res = await post(p.webhookUrl, c.body, headers).catch((error: Error) => {
                throw new Error(`${c.kind}: connection dropped (${error.message})`);
              });
              assert.ok(res.status >= 200 && res.status < 500, `${c.kind}: answered ${res.status} ${res.body}`);
              assert.equal(typeof res.json?.error === 'string' || typeof res.json?.status === 'string', true, `${c.kind}: ${res.body}`);
              const byKind = statuses.get(c.kind) ?? new Map<number, number>();
              byKind.set(res.status, (byKind.get(res.status) ?? 0) + 1);
              statuses.set(c.kind, byKind);
            }),
          );
        }
      };
      // Warm-up rounds (JIT, pools, heap sizing); growth is measured after them. RSS
      // plateaus after a few rounds (measured: the same after 10 more rounds as after 25).
      const rounds = FUZZ_ROUNDS;
      const warmupRounds = rounds >= MEMORY_CHECK_ROUNDS ? 4 : 2;
      for (let round = 0; round < warmupRounds; round++) await runAll();
      const warm = { rss: await rss(), live: await liveMemory() };
      for (let round = 0; round < rounds; round++) await runAll();
      const after = { rss: await rss(), live: await liveMemory() };
      const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
      for (const [kind, counts] of statuses) console.log(`${kind}: ${[...counts].map(([s, n]) => `${s}×${n}`).join(' ')}`);
      console.log(
        `${all.length * (rounds + warmupRounds)} requests; after ${warmupRounds} rounds and after ${rounds} more: ` +
          `RSS ${mib(warm.rss)} → ${mib(after.rss)}, heap and buffers after a full GC ${mib(warm.live)} → ${mib(after.live)}`,
      );
      // What the ingest still holds after a full collection: a leak grows it, while RSS
      // also grows when V8 enlarges its heap under load (+25% over ten rounds was seen
      // in CI, then falling back). One round is too short to show a leak.
      if (rounds >= MEMORY_CHECK_ROUNDS) assert.ok(after.live < warm.live * 1.2, `live memory grew from ${mib(warm.live)} to ${mib(after.live)}`);
      assert.equal(statuses.get('near the limit')?.get(413), 2 * (rounds + warmupRounds));
      assert.equal(statuses.get('unsigned')?.get(401), 100 * (rounds + warmupRounds));
      assert.equal(({} as Record<string, unknown>).polluted, undefined, 'prototype polluted');
      assert.equal((await get(p.webhookUrl.replace('/webhooks/notifyer', '/readyz'))).status, 200);
      assert.equal((await p.send(JSON.stringify({ ...base, user_last_message_time: 1_900_000_000 }))).status, 202);
    } finally {
      await p.stop();
    }
  });
});

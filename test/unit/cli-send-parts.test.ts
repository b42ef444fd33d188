import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseNotifyerPayload } from '@replyflow/shared';
import { messageTimeField, uniqueTimeBase, withMessageTime } from '../../packages/cli/src/send/payloads.js';
import { ProgressBar } from '../../packages/cli/src/send/progress-bar.js';
import { RateGate } from '../../packages/cli/src/send/rate-gate.js';
import { SendStats } from '../../packages/cli/src/send/stats.js';
import { fixtureNames, loadFixture } from '../helpers/fixtures.js';

describe('send --unique: the message time field', () => {
  test('per direction and generation, as the ingest reads it', () => {
    const expected: Record<string, string> = {
      'incoming-text': 'user_last_message_time',
      'incoming-image': 'user_last_message_time',
      'first-contact-referral': 'user_last_message_time',
      'outgoing-agent': 'bot_last_message_time',
      'legacy-incoming': 'user_timestamp',
    };
    for (const name of fixtureNames) assert.equal(messageTimeField(loadFixture(name).json), expected[name], name);
  });

  test('a rewritten payload is a new event of the same shape', () => {
    for (const name of fixtureNames) {
      const { json } = loadFixture(name);
      const before = parseNotifyerPayload(json);
      const after = parseNotifyerPayload(JSON.parse(withMessageTime(json, 1_700_000_123).toString()));
      assert.ok(before.ok && after.ok, name);
      assert.notEqual(after.event.id, before.event.id, name);
      assert.equal(after.event.messageTime, 1_700_000_123, name);
      assert.deepEqual(Object.keys(JSON.parse(withMessageTime(json, 1).toString())).sort(), Object.keys(json).sort(), name);
    }
  });

  test('times lie in the past, and leave room for the whole run', () => {
    const now = Date.parse('2026-11-25T00:00:00Z');
    assert.equal(uniqueTimeBase(10, now, () => 0), now / 1000 - 10);
    const earliest = uniqueTimeBase(10, now, () => 0.999999);
    assert.ok(earliest > now / 1000 - 5 * 366 * 86_400 && earliest < now / 1000 - 4 * 365 * 86_400);
  });
});

describe('SendStats', () => {
  test('counts statuses and no-answers, nearest-rank percentiles of answered requests', () => {
    const stats = new SendStats();
    for (let ms = 1; ms <= 100; ms++) stats.add({ status: ms <= 98 ? 202 : 401, latencyMs: ms });
    stats.add({ status: 'error', reason: 'ECONNREFUSED' });
    assert.deepEqual(stats.summary(), { sent: 101, status: { '202': 98, '401': 2, error: 1 }, latencyMs: { p50: 50, p99: 99 } });
    assert.equal(stats.failed, 3);
    assert.equal(stats.firstError, 'ECONNREFUSED');
  });

  test('all 2xx is no failure; no answers at all have no latency', () => {
    const ok = new SendStats();
    ok.add({ status: 200, latencyMs: 3.14159 });
    ok.add({ status: 202, latencyMs: 1 });
    assert.equal(ok.failed, 0);
    assert.deepEqual(ok.summary().latencyMs, { p50: 1, p99: 3.14 });
    const none = new SendStats();
    none.add({ status: 'error', reason: 'x' });
    assert.deepEqual(none.summary(), { sent: 1, status: { error: 1 }, latencyMs: { p50: null, p99: null } });
  });
});

describe('RateGate', () => {
  test('consecutive starts are 1.02/R s apart, so no second holds more than R arrivals, 20 ms of jitter allowed', async () => {
    const gate = new RateGate(20);
    const starts: number[] = [];
    await Promise.all(Array.from({ length: 25 }, async () => {
      await gate.wait();
      starts.push(performance.now());
    }));
    for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 1]! >= 51 - 0.001, `gap ${starts[i]! - starts[i - 1]!}`);
    for (let i = 20; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 20]! >= 1020 - 0.001);
  });
});

describe('ProgressBar', () => {
  test('drawn only on a terminal, on one line, wiped at the end', () => {
    assert.equal(ProgressBar.onTerminal(10, { isTTY: false } as NodeJS.WriteStream), undefined);
    const writes: string[] = [];
    const stream = { isTTY: true, columns: 60, write: (text: string) => writes.push(text) } as unknown as NodeJS.WriteStream;
    const bar = ProgressBar.onTerminal(4, stream)!;
    bar.update(1, '202:1');
    bar.update(2, '202:2'); // within the redraw interval: skipped
    bar.update(4, '202:4'); // the last one is always drawn
    bar.finish();
    assert.equal(writes.length, 3);
    assert.match(writes[0]!, /^\r\[#{8}-{22}\] 1\/4 {2}202:1/);
    assert.match(writes[1]!, /^\r\[#{30}\] 4\/4/);
    assert.ok(writes.every((text) => !text.includes('\n') && text.length <= 60 + 5));
    assert.equal(writes[2], '\r\x1b[K');
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { startReceiver } from '../helpers/receiver.js';

const dir = mkdtempSync(join(tmpdir(), 'replyflow-independence-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const rules = join(dir, 'rules.yaml');
writeFileSync(rules, 'rules:\n  - name: hello\n    reply:\n      - text: hi\n');
let nextTime = 1_840_000_000;
const message = (phone: string) => ({ ...withMessageTime(loadFixture('incoming-text').json, nextTime++), phone_number: phone });

/** Sends `phones` messages at once and returns how long after the first send each reply arrived, in ms. */
async function replyDelays(workerEnv: Record<string, string>, forwardDelayMs: number, phones: string[]): Promise<number[]> {
  const notifyer = await startReceiver();
  const p = await startPipeline({ receiver: () => ({ status: 200, delayMs: forwardDelayMs }), workerEnv: { ...workerEnv, REPLY_RULES: rules, NOTIFYER_SEND_URL: notifyer.url } });
  try {
    const sentAt = Date.now();
    for (const phone of phones) assert.equal((await p.send(message(phone))).status, 202);
    const replies = await notifyer.waitFor(phones.length, 20_000);
    await p.receiver.waitFor(phones.length, 30_000);
    return replies.map((reply) => reply.at - sentAt);
  } finally {
    await p.stop();
    await notifyer.close();
  }
}

describe('forwarding and auto-replies never hold each other back (contract section 8)', () => {
  test('a slow forward endpoint: each reply goes out at once, for later messages of the phone too', async () => {
    const delays = await replyDelays({}, 3_000, ['447700902001', '447700902001', '447700902001', '447700902002']);
    assert.ok(Math.max(...delays) < 1_500, `replies after ${delays.map(Math.round).join(', ')} ms`);
  });

  test('a forward rate limit: replies are not paced by it, even with every dispatch slot taken', async () => {
    const phones = Array.from({ length: 6 }, (_, i) => `44770090210${i}`);
    // A forward waiting for its slot goes on in a workflow job: it holds none of the 2 dispatch slots.
    const delays = await replyDelays({ FORWARD_RATE_LIMIT: '1', WORKER_CONCURRENCY: '2' }, 0, phones);
    assert.ok(Math.max(...delays) < 1_500, `replies after ${delays.map(Math.round).join(', ')} ms`);
  });
});

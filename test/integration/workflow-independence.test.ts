import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { startReceiver } from '../helpers/receiver.js';
import { repoRoot } from '../helpers/repo-root.js';
import { waitUntil } from '../helpers/wait.js';

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

  test('an attempt that fails to settle beside a completed one: the dispatch is redone, the completed one is not', async () => {
    // Notifyer refuses the reply (400: a dead letter), and that dead letter fails once.
    const notifyer = await startReceiver(() => ({ status: 400 }));
    const p = await startPipeline({ worker: false, receiver: () => ({ status: 200, delayMs: 500 }), workerEnv: { REPLY_RULES: rules, NOTIFYER_SEND_URL: notifyer.url, MAX_ATTEMPTS: '1' } });
    try {
      const worker = await p.startWorker({ NODE_OPTIONS: `--import ${join(repoRoot, 'test/fixtures/fail-dead-letter-once.mjs')}` });
      await p.send(message('447700902201'));
      await worker.waitForLog(/dead letter failed on purpose/, 10_000);
      await worker.waitForLog(/dispatch failed, retrying/, 10_000);
      // The redo tries the reply again (the dead letter it could not write) and leaves the forward alone.
      await waitUntil(() => (notifyer.requests.length >= 2 ? true : undefined), 10_000, () => 'the reply was never tried again');
      await worker.waitForLog(/moved to the dead-letter queue/, 10_000);
      assert.equal(p.receiver.requests.length, 1, 'forwarded once');
    } finally {
      await p.stop();
      await notifyer.close();
    }
  });

  test('a forward rate limit: replies are not paced by it, even with every dispatch slot taken', async () => {
    const phones = Array.from({ length: 6 }, (_, i) => `44770090210${i}`);
    // A forward waiting for its slot goes on in a workflow job: it holds none of the 2 dispatch slots.
    const delays = await replyDelays({ FORWARD_RATE_LIMIT: '1', WORKER_CONCURRENCY: '2' }, 0, phones);
    assert.ok(Math.max(...delays) < 1_500, `replies after ${delays.map(Math.round).join(', ')} ms`);
  });
});

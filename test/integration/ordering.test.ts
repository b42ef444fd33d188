import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadFixture } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import type { RecordedRequest } from '../helpers/receiver.js';
import { sleep } from '../helpers/wait.js';

const base = loadFixture('incoming-text').json;
const phoneOf = (n: number) => `4477009${String(n).padStart(5, '0')}`;
const message = (phone: string, index: number) => ({ ...base, phone_number: phone, user_last_message_time: 1_800_000_000 + index });

/** Arrival and answer time of each forwarded request, by the receiver's clock. */
const spans = new Map<RecordedRequest, number>();

describe('per-conversation order (contract section 5)', () => {
  test('2 workers, 20 phones × 25 interleaved events: in order per phone, one at a time, phones overlap', async () => {
    const p = await startPipeline({
      receiver: (req) => {
        const delayMs = 5 + Math.floor(Math.random() * 25);
        spans.set(req, req.at + delayMs);
        return { status: 200, delayMs };
      },
      workerEnv: { WORKER_CONCURRENCY: '8' },
    });
    try {
      const second = await p.startWorker();
      const phones = Array.from({ length: 20 }, (_, n) => phoneOf(n));
      for (let index = 0; index < 25; index++) {
        const answers = await Promise.all(phones.map((phone) => p.send(message(phone, index))));
        for (const answer of answers) assert.equal(answer.status, 202, answer.body);
      }
      const requests = await p.receiver.waitFor(500, 60_000);
      await sleep(500);
      assert.equal(p.receiver.requests.length, 500, 'every event forwarded exactly once');
      assert.equal(new Set(requests.map((r) => r.json.id)).size, 500);

      for (const phone of phones) {
        const own = requests.filter((r) => r.json.data.phone === phone).sort((a, b) => a.at - b.at);
        const times = own.map((r) => r.json.data.messageTime - 1_800_000_000);
        assert.deepEqual(times, [...Array(25).keys()], `phone ${phone} out of order: ${times.join(',')}`);
        for (let i = 1; i < own.length; i++) {
          assert.ok(own[i]!.at >= spans.get(own[i - 1]!)!, `phone ${phone}: two events in flight at once`);
        }
      }
      const overlapping = requests.some((a) =>
        requests.some((b) => a !== b && a.json.data.phone !== b.json.data.phone && b.at >= a.at && b.at < spans.get(a)!),
      );
      assert.ok(overlapping, 'different phones never overlapped');
      for (const worker of [p.worker!, second]) {
        await worker.waitForLog(function aWorkflowCompleted(log) { return log.msg === 'workflow completed'; }, 2_000);
      }
    } finally {
      await p.stop();
    }
  });

  test('a retrying event holds back later events of its phone only', async () => {
    const slow = phoneOf(900);
    let failuresLeft = 3;
    const p = await startPipeline({
      receiver: (req) => {
        if (req.json.data.phone === slow && req.json.data.messageTime === 1_800_000_000 && failuresLeft > 0) {
          failuresLeft--;
          return { status: 503 };
        }
        return { status: 200 };
      },
      workerEnv: { BACKOFF_BASE_MS: '300' },
    });
    try {
      const other = phoneOf(901);
      for (const [phone, index] of [[slow, 0], [slow, 1], [other, 0], [other, 1], [other, 2]] as const) {
        assert.equal((await p.send(message(phone, index))).status, 202);
      }
      await p.receiver.waitFor(8, 20_000);
      const delivered = p.receiver.requests.filter((r) => r.json.data.phone !== slow || failuresLeft === 0);
      const order = p.receiver.requests.map((r) => `${r.json.data.phone === slow ? 'slow' : 'other'}${r.json.data.messageTime - 1_800_000_000}`);
      // The other phone never waits for the retries; the slow phone's second event waits for its first.
      const lastOther = order.lastIndexOf('other2');
      const firstSlowOne = order.indexOf('slow1');
      assert.ok(lastOther < firstSlowOne, `order: ${order.join(' ')}`);
      assert.deepEqual(order.filter((o) => o.startsWith('slow')), ['slow0', 'slow0', 'slow0', 'slow0', 'slow1']);
      assert.ok(delivered.length > 0);
    } finally {
      await p.stop();
    }
  });
});

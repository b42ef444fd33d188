import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { waitUntil } from '../helpers/wait.js';

const PHONE = '447700901200';
const event = (time: number) => ({ ...withMessageTime(loadFixture('incoming-text').json, time), phone_number: PHONE });

describe('an event whose workers keep dying', () => {
  test('is dispatched again however often (BullMQ fails a job after 5 stalls), and its phone goes on', async () => {
    let hanging = '';
    // The receiver holds the first event's forward, so each worker dies with its dispatch in flight.
    const p = await startPipeline({ worker: false, receiver: (req) => ({ status: 200, delayMs: req.json?.id === hanging ? 120_000 : 0 }) });
    try {
      const env = { JOB_LOCK_MS: '1000' };
      const first = (await p.send(event(1_830_500_000))).json.id as string;
      hanging = first;
      const forwardsOf = (id: string) => p.receiver.requests.filter((r) => r.json?.id === id).length;
      for (let death = 1; death <= 6; death++) {
        const worker = await p.startWorker(env);
        await waitUntil(() => (forwardsOf(first) >= death ? true : undefined), 20_000, () => `dispatch ${death} never reached the receiver`);
        await worker.kill();
      }
      hanging = '';
      await p.startWorker(env);
      const second = (await p.send(event(1_830_500_001))).json.id as string;
      await waitUntil(() => (forwardsOf(second) > 0 ? true : undefined), 30_000, () => 'the phone\'s next event was never forwarded');
      assert.equal(forwardsOf(first), 7, 'forwarded again by the worker that lived');
      const ids = p.receiver.requests.map((r) => r.json?.id);
      assert.ok(ids.lastIndexOf(first) < ids.indexOf(second), 'in order');
    } finally {
      await p.stop();
    }
  });
});

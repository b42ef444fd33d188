import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { sleep } from '../helpers/wait.js';

let nextTime = 1_850_000_000;
const fresh = (n: number) => ({ ...withMessageTime(loadFixture('incoming-text').json, nextTime++), phone_number: `4477013${String(n % 40).padStart(5, '0')}` });

describe('SIGTERM under load (contract section 7)', () => {
  test('a worker finishes what it started and exits 0 within SHUTDOWN_TIMEOUT_MS; nothing is sent twice', async () => {
    const p = await startPipeline({
      receiver: () => ({ status: 200, delayMs: 150 }),
      workerEnv: { WORKER_CONCURRENCY: '8', SHUTDOWN_TIMEOUT_MS: '5000' },
    });
    try {
      for (let n = 0; n < 200; n++) assert.equal((await p.send(fresh(n))).status, 202);
      await p.receiver.waitFor(40, 15_000);
      const signalled = Date.now();
      p.worker!.signal('SIGTERM');
      const exit = await p.worker!.waitForExit(6_000);
      console.log(`worker exited ${exit.code} after ${Date.now() - signalled} ms`);
      assert.equal(exit.code, 0);
      await p.startWorker();
      await p.receiver.waitFor(200, 30_000);
      await sleep(500);
      assert.equal(p.receiver.requests.length, 200, 'an event was sent twice or lost');
    } finally {
      await p.stop();
    }
  });

  test('the ingest answers every request it took, then exits 0; acknowledged events are all stored', async () => {
    const p = await startPipeline({ worker: false });
    try {
      const acknowledged: string[] = [];
      const statuses = new Map<string, number>();
      let stopped = false;
      let n = 0;
      const client = async () => {
        while (!stopped) {
          const res = await p.send(fresh(n++)).catch((error: Error) => ({ status: -1, json: undefined, body: error.message }));
          const key = res.status === -1 ? 'refused' : String(res.status);
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          if (res.status === 202) acknowledged.push(res.json.id);
          if (res.status === -1) stopped = true;
        }
      };
      const clients = Array.from({ length: 8 }, client);
      await sleep(700);
      p.ingest.signal('SIGTERM');
      const exit = await p.ingest.waitForExit(5_000);
      stopped = true;
      await Promise.all(clients);
      console.log(`ingest exit ${exit.code}; answers: ${[...statuses].map(([s, c]) => `${s}×${c}`).join(' ')}`);
      assert.equal(exit.code, 0);
      assert.deepEqual([...statuses.keys()].filter((s) => s !== '202' && s !== 'refused'), []);
      const client2 = p.redis.client();
      for (const id of acknowledged) assert.equal(await client2.exists(`replyflow:events:${id}`), 1, `acknowledged ${id} not stored`);
    } finally {
      await p.stop();
    }
  });
});

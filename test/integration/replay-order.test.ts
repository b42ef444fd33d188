import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { waitUntil } from '../helpers/wait.js';

const REPLAY_POST_MS = 2_000;
const PHONE = '447700900900';

describe('a replayed dead letter keeps its phone one at a time', () => {
  test('an event accepted before the replay but dispatched while it runs waits for it', async () => {
    let replayed = '';
    const p = await startPipeline({
      receiver: (req) => (req.json?.id === replayed ? { status: 200, delayMs: REPLAY_POST_MS } : { status: replayed ? 200 : 400 }),
    });
    try {
      const event = (phone: string, time: number) => ({ ...withMessageTime(loadFixture('incoming-text').json, time), phone_number: phone });
      const env = { REDIS_URL: p.redis.url };
      const dead = (await p.send(event(PHONE, 1_860_000_000))).json.id as string;
      await waitUntil(async () => ((await runCli(['dlq', 'list', '--json'], env)).stdout.includes(dead) ? true : undefined), 15_000, () => 'no dead letter');
      replayed = dead;
      await p.worker!.stop();
      // A backlog of other phones, then one more event of the phone, all accepted before the replay.
      for (let n = 0; n < 150; n++) await p.send(event(`4477009${String(n).padStart(5, '0')}`, 1_860_000_100 + n));
      const later = (await p.send(event(PHONE, 1_860_000_001))).json.id as string;
      assert.equal((await runCli(['dlq', 'replay', dead], env)).code, 0);
      await p.startWorker();
      await waitUntil(() => (p.receiver.requests.filter((r) => r.json?.data?.phone === PHONE).length === 3 ? true : undefined), 20_000, () => 'not all delivered');
      const [, first, second] = p.receiver.requests.filter((r) => r.json?.data?.phone === PHONE);
      // Either order keeps the contract (the event goes first if it joins before the replay starts), never both at once.
      if (first!.json.id === dead) {
        assert.equal(second!.json.id, later);
        assert.ok(second!.at >= first!.at + REPLAY_POST_MS - 50, `the event arrived ${second!.at - first!.at} ms after the replay started, while it was in flight`);
      } else {
        assert.deepEqual([first!.json.id, second!.json.id], [later, dead]);
      }
    } finally {
      await p.stop();
    }
  });
});

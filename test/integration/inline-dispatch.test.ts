import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { startPipeline } from '../helpers/pipeline.js';
import { startReceiver } from '../helpers/receiver.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const SLOW_MS = 12_500;

describe('first attempts run inline in the dispatch', () => {
  test('an inline run longer than the abandoned-head margin still holds its lane against another phone sharing the key', async () => {
    const lane = await startReceiver((_req, count) => (count === 1 ? { status: 200, delayMs: SLOW_MS } : { status: 200 }));
    const p = await startPipeline({ workerEnv: { WORKFLOWS: 'test/fixtures/one-lane-workflow.mjs', ONE_LANE_URL: lane.url } });
    try {
      const event = (phone: string, time: number) => ({ ...withMessageTime(loadFixture('incoming-text').json, time), phone_number: phone });
      assert.equal((await p.send(event('447700900701', 1_830_000_000))).status, 202);
      const [first] = await lane.waitFor(1, 10_000);
      assert.equal((await p.send(event('447700900702', 1_830_000_001))).status, 202);
      const [, second] = await lane.waitFor(2, SLOW_MS + 20_000);
      assert.equal(first!.json.phone, '447700900701');
      assert.equal(second!.json.phone, '447700900702');
      assert.ok(second!.at >= first!.at + SLOW_MS - 50, `the second started ${second!.at - first!.at} ms after the first, while it was still in flight`);
      assert.ok(!p.worker!.logs().some((log) => log.msg === 'lane head had no job; skipped it'), 'the inline head was taken for abandoned');
    } finally {
      await p.stop();
      await lane.close();
    }
  });

  test('workflows finished inline leave no steps hash behind, whether or not they stored a step', async () => {
    const twoStep = await startReceiver();
    const p = await startPipeline({ workerEnv: { WORKFLOWS: 'test/fixtures/two-step-workflow.mjs', TWO_STEP_URL: twoStep.url } });
    try {
      for (let n = 0; n < 3; n++) assert.equal((await p.send(withMessageTime(loadFixture('incoming-text').json, 1_830_000_200 + n))).status, 202);
      const calls = await twoStep.waitFor(3, 10_000);
      await p.receiver.waitFor(3, 10_000);
      // Forward ran first and stored nothing; two-step stored its first step, and forward's last result was stored before it ran.
      assert.deepEqual(
        calls.map((c) => c.json.first),
        p.receiver.requests.map((r) => r.headers['webhook-id']),
      );
      await sleep(300);
      assert.deepEqual(await p.redis.client().keys('*:steps:*'), []);
    } finally {
      await p.stop();
      await twoStep.close();
    }
  });

  test('kill -9 during the second workflow run inline: the first, already sent, is not sent again', async () => {
    const lane = await startReceiver((_req, count) => (count === 1 ? { status: 200, delayMs: 30_000 } : { status: 200 }));
    const p = await startPipeline({
      worker: false,
      workerEnv: { WORKFLOWS: 'test/fixtures/one-lane-workflow.mjs', ONE_LANE_URL: lane.url, JOB_LOCK_MS: '1500' },
    });
    try {
      const first = await p.startWorker();
      const { json } = await p.send(withMessageTime(loadFixture('incoming-text').json, 1_830_000_100));
      await lane.waitFor(1, 10_000);
      // Forward runs beside one-lane, in the same dispatch; finishing first, it is recorded done at once.
      const redis = p.redis.client();
      await waitUntil(async () => (await redis.hget(`replyflow:done:${json.id}`, 'forward')) ?? undefined, 10_000, () => 'forward never recorded done');
      assert.equal(p.receiver.requests.length, 1);
      await first.kill();
      await p.startWorker();
      await lane.waitFor(2, 15_000);
      await sleep(500);
      assert.deepEqual(
        p.receiver.requests.map((r) => r.headers['webhook-id']),
        [json.id],
        'only the step in flight (one-lane) repeats',
      );
    } finally {
      await p.stop();
      await lane.close();
    }
  });
});

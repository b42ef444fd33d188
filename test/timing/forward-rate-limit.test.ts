import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { get } from '../helpers/http.js';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { metricValue, startPipeline } from '../helpers/pipeline.js';

// Timing-sensitive: run alone (npm test runs test/timing/ after the parallel suites),
// so another test's load on this 2-core machine does not skew the receiver's clock.
describe('shared rate limit (FORWARD_RATE_LIMIT)', () => {
  test('two workers together stay within 5% over 10 s and 10% in any second', async () => {
    const p = await startPipeline({ workerEnv: { FORWARD_RATE_LIMIT: '20' } });
    try {
      await p.startWorker();
      const sends = [];
      for (let n = 0; n < 260; n++) {
        const phone = `4477011${String(n % 60).padStart(5, '0')}`;
        sends.push(p.send({ ...withMessageTime(loadFixture('incoming-text').json, 1_830_000_000 + n), phone_number: phone }));
      }
      for (const res of await Promise.all(sends)) assert.equal(res.status, 202);
      const arrivals = (await p.receiver.waitFor(230, 20_000)).map((r) => r.at).sort((a, b) => a - b);
      const start = arrivals[0]! + 1_000;
      const inTenSeconds = arrivals.filter((at) => at >= start && at < start + 10_000).length;
      let busiestSecond = 0;
      for (const from of arrivals) busiestSecond = Math.max(busiestSecond, arrivals.filter((at) => at >= from && at < from + 1_000).length);
      const error = (inTenSeconds - 200) / 200;
      console.log(`rate limit 20/s over two workers: ${inTenSeconds} in 10 s (${(error * 100).toFixed(1)}%), busiest second ${busiestSecond}`);
      assert.ok(Math.abs(error) <= 0.05, `${inTenSeconds} forwards in 10 s`);
      assert.ok(busiestSecond <= 22, `${busiestSecond} forwards in one second`);
      const metrics = (await get(p.workerMetricsUrl)).body;
      assert.ok((metricValue(metrics, 'replyflow_rate_limited_total', { limit: 'forward' }) ?? 0) > 0);
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'forward', outcome: 'retried' }), 0, 'waiting is not an attempt');
    } finally {
      await p.stop();
    }
  });

  // Below 10/s the 10% is less than one request: limit + 1 forwards must span more
  // than a second at the receiver, however late a worker's first request gets there.
  for (const limit of [5, 9]) {
    test(`two workers at ${limit}/s: no second holds more than ${limit}`, async () => {
      const p = await startPipeline({ workerEnv: { FORWARD_RATE_LIMIT: String(limit) } });
      try {
        await p.startWorker();
        const count = limit * 8;
        const sends = [];
        for (let n = 0; n < count; n++) {
          const phone = `4477012${String(n).padStart(5, '0')}`;
          sends.push(p.send({ ...withMessageTime(loadFixture('incoming-text').json, 1_840_000_000 + n), phone_number: phone }));
        }
        for (const res of await Promise.all(sends)) assert.equal(res.status, 202);
        const arrivals = (await p.receiver.waitFor(count, 20_000)).map((r) => r.at).sort((a, b) => a - b);
        let busiestSecond = 0;
        for (const from of arrivals) busiestSecond = Math.max(busiestSecond, arrivals.filter((at) => at >= from && at < from + 1_000).length);
        console.log(`rate limit ${limit}/s over two workers: busiest second ${busiestSecond}`);
        assert.ok(busiestSecond <= Math.floor((limit * 11) / 10), `${busiestSecond} forwards in one second`);
      } finally {
        await p.stop();
      }
    });
  }
});

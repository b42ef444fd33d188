import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { get } from '../helpers/http.js';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { metricValue, startPipeline } from '../helpers/pipeline.js';
import { runToExit } from '../helpers/processes.js';
import { startReceiver } from '../helpers/receiver.js';
import { sleep } from '../helpers/wait.js';

describe('user workflows from WORKFLOWS', () => {
  test('the example module runs beside the built-in forward, each on its own events', async () => {
    const vip = await startReceiver();
    const p = await startPipeline({ workerEnv: { WORKFLOWS: 'examples/workflows.mjs', VIP_URL: vip.url } });
    try {
      const vipEvent = { ...withMessageTime(loadFixture('incoming-text').json, 1_820_000_000), labels: 'customer, VIP' };
      const plainEvent = withMessageTime(loadFixture('incoming-text').json, 1_820_000_001);
      await p.send(vipEvent);
      await p.send(plainEvent);
      const [alert] = await vip.waitFor(1, 10_000);
      await p.receiver.waitFor(2, 10_000);
      await sleep(300);
      assert.equal(vip.requests.length, 1);
      assert.equal(alert!.json.phone, '447700900123');
      assert.equal(p.receiver.requests.length, 2, 'forward still gets every event');
      const metrics = (await get(p.workerMetricsUrl)).body;
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'vip-alert', outcome: 'completed' }), 1);
    } finally {
      await p.stop();
      await vip.close();
    }
  });

  test('a module without workflows is a configuration error naming WORKFLOWS', async () => {
    const result = await runToExit('worker', { WORKFLOWS: 'package.json' }, 10_000);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /WORKFLOWS/);
  });
});

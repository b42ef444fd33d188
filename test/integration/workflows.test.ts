import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { metricValue, startPipeline } from '../helpers/pipeline.js';
import { runToExit } from '../helpers/processes.js';
import { startReceiver } from '../helpers/receiver.js';
import { sleep, waitUntil } from '../helpers/wait.js';

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

  // Port 1 answers nothing: a worker that got as far as Redis would not exit at once with a config error.
  const modules: [string, string, RegExp][] = [
    ['named like the events queue', `export const reserved = { name: 'events', run: async () => {} };`, /export "reserved": workflow name "events"/],
    ['with a negative rate limit', `export default { name: 'a', rateLimit: { name: 'x', perSecond: -5 }, run: async () => {} };`, /rateLimit\.perSecond/],
  ];
  for (const [what, source, error] of modules) {
    test(`a workflow ${what} stops the worker with one line naming WORKFLOWS, before Redis`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'workflows-'));
      try {
        const path = join(dir, 'workflows.mjs');
        writeFileSync(path, source);
        const result = await runToExit('worker', { WORKFLOWS: path, REDIS_URL: 'redis://127.0.0.1:1', METRICS_PORT: '0' }, 10_000);
        assert.equal(result.code, 1);
        assert.match(result.stderr, new RegExp(`^config error: WORKFLOWS: ${path}, .*${error.source}.*\\n$`));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
  test('a step whose result cannot be stored dead-letters the event at once: the step ran once', async () => {
    const sideEffects = await startReceiver();
    const p = await startPipeline({
      workerEnv: { FORWARD_URL: '', WORKFLOWS: 'test/fixtures/unstorable-result-workflow.mjs', UNSTORABLE_URL: sideEffects.url, MAX_ATTEMPTS: '4' },
    });
    try {
      await p.send(withMessageTime(loadFixture('incoming-text').json, 1_820_000_002));
      const deadLettered = { workflow: 'unstorable-result', outcome: 'dead_lettered' };
      const metrics = await waitUntil(
        async () => {
          const text = (await get(p.workerMetricsUrl)).body;
          return metricValue(text, 'replyflow_jobs_total', deadLettered) === 1 ? text : undefined;
        },
        10_000,
        () => 'the event was not dead-lettered',
      );
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'unstorable-result', outcome: 'retried' }) ?? 0, 0);
      assert.equal(sideEffects.requests.length, 1);
      const [entry] = JSON.parse((await runCli(['dlq', 'list', '--json'], { REDIS_URL: p.redis.url })).stdout);
      assert.match(entry.lastError, /step "post" ran, but its result cannot be stored: step results must be JSON-serializable/);
    } finally {
      await p.stop();
      await sideEffects.close();
    }
  });

  test("a debounced workflow may name its own steps 'debounce': the last event of the window replies once", async () => {
    const replies = await startReceiver();
    const p = await startPipeline({ workerEnv: { FORWARD_URL: '', WORKFLOWS: 'test/fixtures/debounced-sleep-workflow.mjs', DEBOUNCED_URL: replies.url } });
    try {
      await p.send(withMessageTime(loadFixture('incoming-text').json, 1_820_000_010));
      const last = (await p.send(withMessageTime(loadFixture('incoming-text').json, 1_820_000_011))).json.id;
      const [reply] = await replies.waitFor(1, 10_000);
      assert.equal(reply!.json.id, last);
      const completed = { workflow: 'debounced-sleep', outcome: 'completed' };
      await waitUntil(
        async () => metricValue((await get(p.workerMetricsUrl)).body, 'replyflow_jobs_total', completed) === 2 || undefined,
        10_000,
        () => 'both events did not complete',
      );
      const metrics = (await get(p.workerMetricsUrl)).body;
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'debounced-sleep', outcome: 'dead_lettered' }) ?? 0, 0);
      assert.equal(replies.requests.length, 1, 'the superseded event sent nothing');
    } finally {
      await p.stop();
      await replies.close();
    }
  });

  test('a match that throws dead-letters its workflow for that event alone; other workflows and later events go on', async () => {
    const matched = await startReceiver();
    const p = await startPipeline({ workerEnv: { WORKFLOWS: 'test/fixtures/throwing-match-workflow.mjs', MATCHED_URL: matched.url } });
    try {
      const message = (phone: string, time: number, text: string | null) => ({
        ...withMessageTime(loadFixture('incoming-text').json, time),
        phone_number: phone,
        last_message_of_user: text,
      });
      const throwing = (await p.send(message('447700900881', 1_840_000_000, null))).json.id;
      await p.send(message('447700900881', 1_840_000_001, 'vip order'));
      await p.send(message('447700900882', 1_840_000_002, 'hello'));
      await p.receiver.waitFor(3, 10_000);
      const [vip] = await matched.waitFor(1, 10_000);
      assert.deepEqual(vip!.json, { phone: '447700900881', text: 'vip order' });
      const listed = await waitUntil(
        async () => {
          const run = await runCli(['dlq', 'list', '--json'], { REDIS_URL: p.redis.url });
          const entries = JSON.parse(run.stdout) as { id: string; workflow: string; history: { error: string }[] }[];
          return entries.length > 0 ? entries : undefined;
        },
        10_000,
        () => 'nothing dead-lettered',
        200,
      );
      assert.deepEqual(
        listed.map(({ id, workflow }) => ({ id, workflow })),
        [{ id: throwing, workflow: 'vip-words' }],
      );
      assert.equal(listed[0]!.history.length, 1);
      assert.match(listed[0]!.history[0]!.error, /^match threw: /);
      const metrics = (await get(p.workerMetricsUrl)).body;
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'vip-words', outcome: 'dead_lettered' }), 1);
      assert.ok(!p.worker!.logs().some((line) => line.msg === 'dispatch failed, retrying'), 'a dispatch was retried');
    } finally {
      await p.stop();
      await matched.close();
    }
  });

  test('a match that is not a function is a configuration error naming WORKFLOWS and match', async () => {
    // A port nothing listens on: a worker that wrongly starts must not reach any real Redis.
    const result = await runToExit('worker', { WORKFLOWS: 'test/fixtures/match-not-a-function.mjs', REDIS_URL: 'redis://127.0.0.1:1', METRICS_PORT: '0' }, 10_000);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /WORKFLOWS.*match must be a function/);
  });

  test('a module without workflows is a configuration error naming WORKFLOWS', async () => {
    const result = await runToExit('worker', { WORKFLOWS: 'package.json' }, 10_000);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /WORKFLOWS/);
  });
});

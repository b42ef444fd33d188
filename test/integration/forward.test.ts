import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { DEAD_LETTER_QUEUE, doneKey, type DeadLetterJobData } from '@replyflow/shared';
import { Queue } from 'bullmq';
import { get } from '../helpers/http.js';
import { fixtureNames, loadFixture, withMessageTime } from '../helpers/fixtures.js';
import { metricValue, startPipeline, type Pipeline } from '../helpers/pipeline.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const FORWARD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
let nextTime = 1_800_000_000;
const freshEvent = (name = 'incoming-text') => withMessageTime(loadFixture(name).json, nextTime++);

async function deadLetters(p: Pipeline): Promise<DeadLetterJobData[]> {
  const connection = p.redis.client();
  const queue = new Queue<DeadLetterJobData>(DEAD_LETTER_QUEUE, { connection, prefix: 'replyflow' });
  const jobs = await queue.getJobs(['waiting']);
  await queue.close();
  return jobs.map((job) => job.data);
}

describe('forward workflow (contract section 5)', () => {
  let p: Pipeline;
  before(async () => {
    p = await startPipeline({ workerEnv: { FORWARD_SECRET } });
  });
  after(() => p.stop());

  test('every fixture arrives once, signed, with the contract body and headers', async () => {
    const ids = new Map<string, string>();
    for (const name of fixtureNames) ids.set((await p.send(loadFixture(name).text)).json.id, name);
    const requests = await p.receiver.waitFor(fixtureNames.length, 10_000);
    await sleep(300);
    assert.equal(p.receiver.requests.length, fixtureNames.length);
    const verifier = new Webhook(FORWARD_SECRET);
    for (const req of requests) {
      const name = ids.get(req.json.id);
      assert.ok(name, `unexpected id ${req.json.id}`);
      const fixture = loadFixture(name).json;
      assert.equal(req.headers['content-type'], 'application/json');
      assert.equal(req.headers['webhook-id'], req.json.id);
      assert.match(String(req.headers['webhook-timestamp']), /^\d{10}$/);
      assert.match(String(req.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      verifier.verify(req.body, req.headers as Record<string, string>);
      assert.equal(req.json.type, fixture.incoming_message === false ? 'message.sent' : 'message.received');
      assert.ok(!Number.isNaN(Date.parse(req.json.receivedAt)));
      assert.deepEqual(req.json.data.raw, fixture);
      assert.match(req.json.data.phone, /^\d+$/);
      assert.ok(Array.isArray(req.json.data.labels));
      assert.ok(Array.isArray(req.json.data.lastMessages));
      assert.equal(typeof req.json.data.messageTime, 'number');
    }
  });

  test('a duplicate after the job was removed answers 200 and forwards nothing', async () => {
    const body = freshEvent();
    const first = await p.send(body);
    await p.receiver.waitFor(p.receiver.requests.length, 5_000);
    const client = p.redis.client();
    // The finished job is gone; only the compact done marker remains.
    for (let i = 0; i < 50 && (await client.exists(`replyflow:events:${first.json.id}`)); i++) await sleep(50);
    assert.equal(await client.exists(`replyflow:events:${first.json.id}`), 0);
    assert.equal(await client.exists(doneKey('replyflow', first.json.id)), 1);
    assert.ok((await client.ttl(doneKey('replyflow', first.json.id))) > 600_000);
    const before = p.receiver.requests.length;
    const again = await p.send(body);
    assert.equal(again.status, 200);
    assert.equal(again.json.status, 'duplicate');
    await sleep(500);
    assert.equal(p.receiver.requests.length, before);
    assert.equal(p.receiver.requests.filter((r) => r.json.id === first.json.id).length, 1);
  });

  test('queue and job metrics are exported', async () => {
    const metrics = (await get(p.workerMetricsUrl)).body;
    assert.ok((metricValue(metrics, 'replyflow_jobs_total', { workflow: 'forward', outcome: 'completed' }) ?? 0) >= fixtureNames.length);
    assert.ok((metricValue(metrics, 'replyflow_event_lag_seconds_count', { workflow: 'forward' }) ?? 0) >= fixtureNames.length);
    assert.equal(metricValue(metrics, 'replyflow_queue_jobs', { queue: 'events', state: 'waiting' }), 0);
    assert.notEqual(metricValue(metrics, 'replyflow_queue_oldest_waiting_seconds', { queue: 'dead-letter' }), undefined);
    assert.equal(metricValue(metrics, 'replyflow_redis_up'), 1);
  });
});

describe('forward failures', () => {
  test('5xx and network errors are retried with backoff until delivered', async () => {
    const p = await startPipeline({
      receiver: (_req, count) => (count === 1 ? { status: 503 } : count === 2 ? { status: 200, destroy: true } : { status: 200 }),
    });
    try {
      const { json } = await p.send(freshEvent());
      const requests = await p.receiver.waitFor(3, 10_000);
      assert.ok(requests.every((r) => r.json.id === json.id));
      await sleep(300);
      assert.equal(p.receiver.requests.length, 3);
      const metrics = (await get(p.workerMetricsUrl)).body;
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'forward', outcome: 'retried' }), 2);
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'forward', outcome: 'completed' }), 1);
    } finally {
      await p.stop();
    }
  });

  test('429 is retried no sooner than its Retry-After', async () => {
    const p = await startPipeline({
      receiver: (_req, count) => (count === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200 }),
    });
    try {
      await p.send(freshEvent());
      const [first, second] = await p.receiver.waitFor(2, 10_000);
      assert.ok(second!.at - first!.at >= 1900, `retried after ${second!.at - first!.at} ms`);
    } finally {
      await p.stop();
    }
  });

  test('a 429 waiting out its Retry-After is not cut short when its lane wakes it', async () => {
    const p = await startPipeline({
      receiver: (_req, count) => (count === 1 ? { status: 429, headers: { 'retry-after': '3' } } : { status: 200 }),
    });
    const queue = new Queue('forward', { connection: p.redis.client(), prefix: 'replyflow' });
    try {
      const { json } = await p.send(freshEvent());
      await p.receiver.waitFor(1, 10_000);
      const jobId = `forward.${json.id}`;
      await waitUntil(async () => ((await queue.getJobState(jobId)) === 'delayed' ? true : undefined), 5_000, () => 'never delayed');
      // What a lane does to its head when an entry that went ahead of it leaves.
      await (await queue.getJob(jobId))!.promote();
      const [first, second] = await p.receiver.waitFor(2, 10_000);
      assert.ok(second!.at - first!.at >= 2_900, `retried after ${second!.at - first!.at} ms`);
    } finally {
      await queue.close();
      await p.stop();
    }
  });

  test('another 4xx is permanent: one attempt, then the dead-letter queue with its history', async () => {
    const p = await startPipeline({ receiver: () => ({ status: 400 }) });
    try {
      const { json } = await p.send(freshEvent());
      await p.receiver.waitFor(1, 10_000);
      await p.worker!.waitForLog(/dead-letter/, 5_000);
      await sleep(300);
      assert.equal(p.receiver.requests.length, 1);
      const [entry] = await deadLetters(p);
      assert.equal(entry?.eventId, json.id);
      assert.equal(entry?.workflow, 'forward');
      assert.equal(entry?.history.length, 1);
      assert.equal(entry?.history[0]?.status, 400);
      assert.equal(entry?.history[0]?.kind, 'permanent');
      // Dead-lettered is finished: a redelivery is still a duplicate.
      assert.equal((await p.send(freshEventWithTime(json))).status, 200);
    } finally {
      await p.stop();
    }
  });

  test('after MAX_ATTEMPTS failures the event is dead-lettered with every attempt', async () => {
    const p = await startPipeline({ receiver: () => ({ status: 500 }), workerEnv: { MAX_ATTEMPTS: '3' } });
    try {
      const { json } = await p.send(freshEvent());
      await p.receiver.waitFor(3, 10_000);
      await p.worker!.waitForLog(/dead-letter/, 5_000);
      await sleep(300);
      assert.equal(p.receiver.requests.length, 3);
      const [entry] = await deadLetters(p);
      assert.equal(entry?.eventId, json.id);
      assert.deepEqual(entry?.history.map((h) => h.status), [500, 500, 500]);
      const metrics = (await get(p.workerMetricsUrl)).body;
      assert.equal(metricValue(metrics, 'replyflow_jobs_total', { workflow: 'forward', outcome: 'dead_lettered' }), 1);
      assert.equal(metricValue(metrics, 'replyflow_queue_jobs', { queue: 'dead-letter', state: 'waiting' }), 1);
    } finally {
      await p.stop();
    }
  });

  test('an endpoint that hangs is cut at FORWARD_TIMEOUT_MS and retried', async () => {
    const p = await startPipeline({
      receiver: (_req, count) => (count === 1 ? { status: 200, delayMs: 5_000 } : { status: 200 }),
      workerEnv: { FORWARD_TIMEOUT_MS: '500' },
    });
    try {
      await p.send(freshEvent());
      const [first, second] = await p.receiver.waitFor(2, 10_000);
      assert.ok(second!.at - first!.at < 3_000, `second attempt after ${second!.at - first!.at} ms`);
      // Logs are written in batches (up to 100 ms late): wait for the line, don't look once.
      await p.worker!.waitForLog(function timeoutLogged(log) { return log.kind === 'timeout'; }, 2_000);
    } finally {
      await p.stop();
    }
  });
});

/** The same event as the one with this id was built from: a redelivery. */
function freshEventWithTime(response: { id: string }) {
  void response;
  return withMessageTime(loadFixture('incoming-text').json, nextTime - 1);
}

import assert from 'node:assert/strict';
import { layoutRecordKey, parseLayoutRecord, seqKey, signatureHeader, createKeyspace, type LayoutRecord, type RedisClient } from '@replyflow/shared';
import { loadFixture } from './fixtures.js';
import { freePort } from './free-port.js';
import { post, type HttpResponse } from './http.js';
import { startProcess, type AppProcess } from './processes.js';
import { startReceiver, type RecordedRequest } from './receiver.js';
import { sleep, waitUntil } from './wait.js';

const SECRET = 'shard-change-secret';
const base = loadFixture('incoming-text').json;
const FIRST_TIME = 1_880_000_000;
/**
 * Some events fail their first delivery, among them each phone's event just
 * before the change (index 14 of 30): its retry is still pending in the old
 * shard when the phone's next events arrive in the new one.
 */
export const failsFirst = (messageTime: number): boolean => (messageTime - FIRST_TIME) % 10 === 4;

export interface ShardChangeOptions {
  /** REDIS_URL or REDIS_CLUSTER_NODES. */
  redisEnv: Record<string, string>;
  /** A client for looking at the keys. */
  redis: RedisClient;
  clustered: boolean;
  from: number;
  to: number;
  phones: number;
  eventsPerPhone: number;
}

export interface ShardChangeResult {
  accepted: number;
  /** Answers 202 by the ingest still started with the old QUEUE_SHARDS, after the change. */
  acceptedByOldIngestAfterSwitch: number;
  /** Redeliveries, after the change, of events accepted before it. */
  redeliveredAfterSwitch: HttpResponse[];
  forwarded: RecordedRequest[];
  inFlightViolations: string[];
  outOfOrder: string[];
  record: LayoutRecord;
  /** The old layout's sequence counters at the switch and at the end: the old ingest must stop adding to them. */
  oldSeqAtSwitch: number;
  oldSeqAtEnd: number;
  switchMs: number;
  /** Log lines of every process that mention a cross-slot error (Redis Cluster). */
  crossSlotLines: string[];
}

/**
 * A rolling change of QUEUE_SHARDS under traffic, as a deployment would do it:
 * a new ingest and a new worker start with the new count while the old ones
 * still run and still take webhooks, then the old ones stop. Each phone's
 * events are sent one after another, so its acceptance order is known, and
 * the receiver answers slowly (some first attempts fail) so that the old
 * shards still hold events, some of them retrying, when the change happens.
 */
export async function runShardChange(options: ShardChangeOptions): Promise<ShardChangeResult> {
  const inFlight = new Map<string, number>();
  const attempts = new Map<string, number>();
  const inFlightViolations: string[] = [];
  const receiver = await startReceiver(async (req) => {
    const phone = req.json.data.phone as string;
    const id = req.json.id as string;
    attempts.set(id, (attempts.get(id) ?? 0) + 1);
    inFlight.set(phone, (inFlight.get(phone) ?? 0) + 1);
    if (inFlight.get(phone)! > 1) inFlightViolations.push(`${phone} at ${req.json.data.messageTime}`);
    await sleep(2 + Math.floor(Math.random() * 8));
    inFlight.set(phone, inFlight.get(phone)! - 1);
    // Retry-After makes the wait certain: 2 s, whatever the backoff's jitter draws.
    if (attempts.get(id) === 1 && failsFirst(req.json.data.messageTime as number)) return { status: 503, headers: { 'retry-after': '2' } };
    return { status: 200 };
  });
  const apps: AppProcess[] = [];
  const common = { ...options.redisEnv, HOST: '127.0.0.1', JOB_LOCK_MS: '5000' };
  const startIngest = async (shards: number) => {
    const port = await freePort();
    const app = await startProcess('ingest', { ...common, QUEUE_SHARDS: String(shards), PORT: String(port), METRICS_PORT: '0', WEBHOOK_SECRET: SECRET });
    apps.push(app);
    return { app, url: `http://127.0.0.1:${port}/webhooks/notifyer` };
  };
  const startWorker = async (shards: number) => {
    const app = await startProcess('worker', {
      ...common,
      QUEUE_SHARDS: String(shards),
      METRICS_PORT: '0',
      FORWARD_URL: receiver.url,
      BACKOFF_BASE_MS: '100',
      WORKER_CONCURRENCY: '8',
    });
    apps.push(app);
    return app;
  };
  const oldKeyspace = createKeyspace('replyflow', options.from, options.clustered);
  const oldSeq = async () => {
    const values = await Promise.all(oldKeyspace.shards.map((shard) => options.redis.get(seqKey(shard))));
    return values.reduce((sum, value) => sum + Number(value ?? 0), 0);
  };
  try {
    const oldIngest = await startIngest(options.from);
    const oldWorker = await startWorker(options.from);
    const urls = [oldIngest.url];
    const acceptedBeforeSwitch: object[] = [];
    let switched = false;
    let acceptedByOldIngestAfterSwitch = 0;
    let accepted = 0;
    const total = options.phones * options.eventsPerPhone;
    const send = async (payload: object, index: number): Promise<HttpResponse> => {
      for (;;) {
        const url = urls[index % urls.length]!;
        const text = JSON.stringify(payload);
        const res = await post(url, text, { 'content-type': 'application/json', 'x-webhook-signature': signatureHeader('token', text, SECRET) });
        if (res.status === 503) {
          await sleep(50); // as Notifyer would, later
          continue;
        }
        if (res.status === 202 && url === oldIngest.url && switched) acceptedByOldIngestAfterSwitch++;
        return res;
      }
    };
    // Two gates keep the phases apart whatever the machine's speed: traffic
    // flows while the new ingest starts, waits at half-way until it has
    // switched (so that both ingests take events after the change), and waits
    // near the end until the old ingest has stopped.
    const switchedGate = deferred();
    const oldIngestGoneGate = deferred();
    const half = Math.floor(options.eventsPerPhone / 2);
    const late = Math.floor((options.eventsPerPhone * 5) / 6);
    const phoneSender = async (phoneIndex: number) => {
      const phone = `4477016${String(phoneIndex).padStart(5, '0')}`;
      for (let i = 0; i < options.eventsPerPhone; i++) {
        if (i === half) await switchedGate.promise;
        if (i === late) await oldIngestGoneGate.promise;
        const payload = { ...base, phone_number: phone, user_last_message_time: FIRST_TIME + i };
        const res = await send(payload, phoneIndex + i);
        assert.equal(res.status, 202, res.body);
        accepted++;
        if (!switched) acceptedBeforeSwitch.push(payload);
        await sleep(Math.floor(Math.random() * 10));
      }
    };
    const rollout = (async () => {
      await waitUntil(() => accepted >= total / 4 || undefined, 60_000, () => `only ${accepted} accepted`);
      const started = Date.now();
      const newIngest = await startIngest(options.to);
      switched = true;
      const switchMs = Date.now() - started;
      const oldSeqAtSwitch = await oldSeq();
      urls.push(newIngest.url);
      switchedGate.resolve();
      await startWorker(options.to);
      await oldWorker.stop();
      await waitUntil(() => accepted >= options.phones * late || undefined, 60_000, () => `only ${accepted} accepted`);
      urls.shift();
      await oldIngest.app.stop();
      oldIngestGoneGate.resolve();
      return { switchMs, oldSeqAtSwitch };
    })();
    await Promise.all([rollout, ...Array.from({ length: options.phones }, (_, n) => phoneSender(n))]);
    const { switchMs, oldSeqAtSwitch } = await rollout;
    const redeliveredAfterSwitch = await Promise.all(acceptedBeforeSwitch.slice(0, 10).map((payload, n) => send(payload, n)));
    await waitUntil(
      () => new Set(receiver.requests.map((r) => r.json.id)).size >= total || undefined,
      120_000,
      () => `${new Set(receiver.requests.map((r) => r.json.id)).size} of ${total} events forwarded`,
    );
    await sleep(500);
    const record = await waitUntil(
      async () => {
        const raw = await options.redis.get(layoutRecordKey(oldKeyspace.global));
        const parsed = raw ? parseLayoutRecord(raw) : undefined;
        return parsed?.retired.every((r) => r.drained) ? parsed : undefined;
      },
      30_000,
      () => 'the retired layout never drained',
    );
    return {
      accepted,
      acceptedByOldIngestAfterSwitch,
      redeliveredAfterSwitch,
      forwarded: receiver.requests.slice(),
      inFlightViolations,
      outOfOrder: outOfOrder(receiver.requests),
      record,
      oldSeqAtSwitch,
      oldSeqAtEnd: await oldSeq(),
      switchMs,
      crossSlotLines: apps.flatMap((app) => app.lines.filter((line) => line.includes('CROSSSLOT'))),
    };
  } finally {
    await Promise.allSettled(apps.map((app) => app.kill()));
    await receiver.close();
  }
}

/** Phones whose deliveries (a failed attempt and its retry included) are not in message-time order. */
function outOfOrder(requests: readonly RecordedRequest[]): string[] {
  const lastByPhone = new Map<string, number>();
  const problems: string[] = [];
  for (const request of requests) {
    const phone = request.json.data.phone as string;
    const time = request.json.data.messageTime as number;
    if ((lastByPhone.get(phone) ?? -1) > time) problems.push(`${phone}: ${time} after ${lastByPhone.get(phone)}`);
    lastByPhone.set(phone, Math.max(time, lastByPhone.get(phone) ?? -1));
  }
  return problems;
}

/** What a change of QUEUE_SHARDS must keep: each event once (a failed first attempt and its retry), in order, one at a time per phone. */
export function assertShardChange(result: ShardChangeResult, total: number): void {
  assert.equal(result.accepted, total);
  const byId = new Map<string, RecordedRequest[]>();
  for (const request of result.forwarded) byId.set(request.json.id, [...(byId.get(request.json.id) ?? []), request]);
  assert.equal(byId.size, total, 'every accepted event forwarded');
  for (const [id, deliveries] of byId) {
    const expected = failsFirst(deliveries[0]!.json.data.messageTime) ? 2 : 1;
    assert.equal(deliveries.length, expected, `event ${id} delivered ${deliveries.length} times, expected ${expected}`);
  }
  assert.deepEqual(result.outOfOrder, [], 'per-phone order');
  assert.deepEqual(result.inFlightViolations, [], 'two events of one phone in flight at once');
  for (const res of result.redeliveredAfterSwitch) {
    assert.equal(res.status, 200, 'an event accepted before the change is a duplicate after it');
    assert.equal(res.json.status, 'duplicate');
  }
  assert.deepEqual(result.crossSlotLines, []);
  assert.ok(result.acceptedByOldIngestAfterSwitch > 0, 'the old ingest kept taking webhooks after the change');
  assert.equal(result.oldSeqAtEnd, result.oldSeqAtSwitch, 'the old ingest added to the old shards after the change');
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

// Worker: events/s draining the same backlog to the same local receiver.
// replyflow's events go through its ingest (so their lanes and intake records
// exist, as in production); the raw BullMQ baselines get equivalent jobs with
// addBulk. Per-phone ordering is on for replyflow and checked by the receiver.
import { parseNotifyerPayload } from '@replyflow/shared';
import { Queue } from 'bullmq';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/free-port.js';
import { startIngest, startWorker } from './lib/apps.js';
import { baselineScript } from './lib/baselines.js';
import type { BenchContext } from './lib/context.js';
import { postAll } from './lib/http-load.js';
import { progress, sleep } from './lib/log.js';
import { bodyAt, phoneOf, timeBase } from './lib/payloads.js';
import { startNode, type NodeProcess } from './lib/procs.js';
import { startReceiver, type CountingReceiver } from './lib/receiver.js';
import { flushAll } from './lib/redis.js';
import { median, round, spread } from './lib/stats.js';
import { CpuWindow } from './lib/sys.js';

export const WORKER_CONTENDERS = ['noop', 'raw', 'rawSameClient', 'replyflow1', 'replyflow2'] as const;
/** `variant` runs only with BENCH_WORKER_VARIANT: replyflow, 1 worker, with those settings. */
export type WorkerContender = (typeof WORKER_CONTENDERS)[number] | 'variant';
export const WORKER_LABELS: Record<WorkerContender, string> = {
  noop: 'BullMQ no-op worker',
  raw: 'raw BullMQ worker + POST',
  rawSameClient: "raw BullMQ worker + replyflow's POST",
  replyflow1: 'replyflow, 1 worker',
  replyflow2: 'replyflow, 2 workers',
  variant: 'replyflow, 1 worker, variant',
};

/** Whether the contender is replyflow itself, bound by its promises (per-phone order). */
export const isReplyflow = (contender: WorkerContender): boolean => contender.startsWith('replyflow') || contender === 'variant';

/** The contenders of a run, in the order of its first round. */
export const workerContendersOf = (config: Pick<BenchContext['config'], 'workerVariant'>): WorkerContender[] => [
  ...WORKER_CONTENDERS,
  ...(config.workerVariant ? (['variant'] as const) : []),
];

export interface WorkerRun {
  round: number;
  eventsPerSecond: number;
  /** Seconds from the first delivery (or job start) to the last. */
  drainSeconds: number;
  /** Worker process CPU per event (all worker processes, from ready to drained), microseconds. */
  workerCpuUs: number;
  redisCpuUs: number;
  otherCores: number;
  delivered: number;
  duplicates: number;
  outOfOrder: number;
}

export interface WorkerContenderResult {
  label: string;
  runs: WorkerRun[];
  eventsPerSecond: number;
  workerCpuUs: number;
  redisCpuUs: number;
  spread: number;
}

export interface WorkerResult {
  events: number;
  phones: number;
  concurrency: number;
  rounds: number;
  /** Every contender that ran (the variant only with BENCH_WORKER_VARIANT). */
  contenders: Partial<Record<WorkerContender, WorkerContenderResult>> & Record<(typeof WORKER_CONTENDERS)[number], WorkerContenderResult>;
  /** BENCH_WORKER_VARIANT, when the variant ran. */
  variantSettings?: Record<string, string>;
  ratios: {
    /** replyflow (1 worker) over the raw worker doing the same POST: the target. */
    replyflowOverRaw: number;
    /** replyflow (1 worker) over the raw worker making its POST with replyflow's own function: what replyflow adds beyond the POST. */
    replyflowOverRawSameClient: number;
    replyflowOverNoop: number;
    rawOverNoop: number;
    replyflow2OverRaw: number;
    /** The variant over replyflow with 1 worker (median of the rounds): what its settings change. */
    variantOverReplyflow?: number;
    perRound: { round: number; replyflowOverRaw: number; replyflowOverRawSameClient: number; variantOverReplyflow?: number }[];
  };
  otherCores: number;
  problems: string[];
}

/** The body replyflow's forward workflow sends (contract section 5), built once at enqueue time. */
function forwardBodyOf(payloadText: string, receivedAt: number): { id: string; body: Record<string, unknown> } {
  const parsed = parseNotifyerPayload(JSON.parse(payloadText));
  if (!parsed.ok) throw new Error(`invalid bench payload: ${JSON.stringify(parsed.issues)}`);
  const e = parsed.event;
  return {
    id: e.id,
    body: {
      id: e.id,
      type: e.direction === 'incoming' ? 'message.received' : 'message.sent',
      receivedAt: new Date(receivedAt).toISOString(),
      data: {
        phone: e.phone,
        direction: e.direction,
        messageTime: e.messageTime,
        messageType: e.messageType,
        text: e.text,
        labels: e.labels,
        lastMessages: e.lastMessages,
        raw: e.raw,
      },
    },
  };
}

export async function enqueueRaw(ctx: BenchContext, events: number): Promise<void> {
  const queue = new Queue('forward', { connection: { host: '127.0.0.1', port: ctx.redis.server.port }, prefix: 'raw' });
  const base = timeBase(events);
  const receivedAt = Date.now();
  for (let start = 0; start < events; start += 1000) {
    const jobs = [];
    for (let n = start; n < Math.min(events, start + 1000); n++) {
      const { id, body } = forwardBodyOf(bodyAt(ctx.templates, n, base, ctx.config.phones), receivedAt);
      jobs.push({ name: 'forward', data: body, opts: { jobId: id, removeOnComplete: true } });
    }
    await queue.addBulk(jobs);
  }
  await queue.close();
}

export interface Drain {
  seconds: number;
  workerCpu: number;
  redisCpu: number;
  otherCores: number;
}

/** A drain's per-event figures, as every worker table reports them. */
export function drainFigures(drain: Drain, events: number) {
  return {
    // n deliveries span n - 1 intervals.
    eventsPerSecond: (events - 1) / drain.seconds,
    drainSeconds: drain.seconds,
    workerCpuUs: (drain.workerCpu / events) * 1e6,
    redisCpuUs: (drain.redisCpu / events) * 1e6,
    otherCores: drain.otherCores,
  };
}

/** The raw worker's modes: nothing, undici's `request` as a developer would write it, or replyflow's own POST function. */
type RawMode = 'noop' | 'post' | 'replyflow-post';

/** replyflow's POST function, which the raw worker's `replyflow-post` mode imports. */
const replyflowPostModule = fileURLToPath(new URL('../apps/worker/dist/engine/http-post.js', import.meta.url));

async function drainRaw(ctx: BenchContext, mode: RawMode, receiver: CountingReceiver): Promise<Drain> {
  const { config, redis } = ctx;
  await enqueueRaw(ctx, config.events);
  const env = {
    REDIS_URL: redis.url,
    QUEUE: 'forward',
    PREFIX: 'raw',
    CONCURRENCY: String(config.workerConcurrency),
    MODE: mode,
    FORWARD_URL: receiver.url,
    TARGET: String(config.events),
    POST_MODULE: replyflowPostModule,
  };
  const worker = await startNode(`raw-worker-${mode}`, baselineScript('raw-worker'), env, { ready: /raw worker started/ });
  // From the moment the worker is ready (its start-up excluded, as for replyflow) to the drain's end.
  const cpu = new CpuWindow({ redis: redis.pid, worker: worker.pid });
  try {
    const line = await worker.waitForLine(/"drained"/, drainTimeoutMs(config.events));
    const window = cpu.stop();
    const workerCpu = window.processes.worker ?? 0;
    const { firstStartMs, lastEndMs } = JSON.parse(line) as { firstStartMs: number; lastEndMs: number };
    const seconds = mode === 'post' ? (receiver.lastAt - receiver.firstAt) / 1000 : (lastEndMs - firstStartMs) / 1000;
    return { seconds, workerCpu, redisCpu: window.processes.redis ?? 0, otherCores: window.otherCores };
  } finally {
    await worker.stop();
  }
}

const drainTimeoutMs = (events: number) => Math.max(120_000, events * 20);

/** Where replyflow's processes keep their queues, when not on the bench's one redis-server (the scale section). */
export interface DrainTarget {
  /** Environment for the ingest and the workers, e.g. REDIS_CLUSTER_NODES and QUEUE_SHARDS. */
  env: Record<string, string>;
  /** The redis-server processes whose CPU counts as Redis CPU. */
  redisPids: number[];
  /** Events to post and drain (default BENCH_EVENTS). */
  events?: number;
}

/**
 * Posts the backlog through replyflow's ingest with no worker running, then drains it with `workers` workers.
 * By default on the bench's redis-server; `target` points the processes elsewhere (scale.ts).
 */
export async function drainReplyflow(ctx: BenchContext, workers: number, receiver: CountingReceiver, target?: DrainTarget): Promise<Drain> {
  const { config, redis } = ctx;
  const events = target?.events ?? config.events;
  const env = target?.env ?? {};
  const redisPids = Object.fromEntries((target?.redisPids ?? [redis.pid]).map((pid, i) => [`redis${i}`, pid]));
  const [port, metricsPort] = await Promise.all([freePort(), freePort()]);
  const ingest = await startIngest(ctx, port, metricsPort, [], env);
  const started: NodeProcess[] = [];
  try {
    const base = timeBase(events);
    const sent = await postAll(
      `http://127.0.0.1:${port}/webhooks/notifyer`,
      events,
      config.connections,
      (n) => bodyAt(ctx.templates, n, base, config.phones),
      (n) => phoneOf(n, config.phones),
    );
    if (sent.statuses['202'] !== events) throw new Error(`ingest answered ${JSON.stringify(sent.statuses)} to ${events} new events`);
    started.push(...(await Promise.all(Array.from({ length: workers }, () => startWorker(ctx, receiver.url, [], env)))));
    // From the moment the workers are ready (their start-up excluded) to the drain's end.
    const cpu = new CpuWindow({ ...redisPids, ingest: ingest.pid, ...Object.fromEntries(started.map((w, i) => [`worker${i}`, w.pid])) });
    await receiver.waitFor(events, drainTimeoutMs(events), (count) => progress(`worker: ${count}/${events} delivered`));
    const window = cpu.stop();
    const workerCpu = started.reduce((sum, _w, i) => sum + (window.processes[`worker${i}`] ?? 0), 0);
    const redisCpu = Object.keys(redisPids).reduce((sum, name) => sum + (window.processes[name] ?? 0), 0);
    return { seconds: (receiver.lastAt - receiver.firstAt) / 1000, workerCpu, redisCpu, otherCores: window.otherCores };
  } finally {
    await Promise.all(started.map((w) => w.stop()));
    await ingest.stop();
  }
}

const variantTarget = (ctx: BenchContext): DrainTarget => ({ env: ctx.config.workerVariant ?? {}, redisPids: [ctx.redis.pid] });

/** One drain of `contender` on a flushed Redis, with what the receiver saw. */
export async function measure(ctx: BenchContext, contender: WorkerContender, roundNo: number): Promise<WorkerRun> {
  const { config } = ctx;
  await flushAll(ctx.redis.client);
  const receiver = await startReceiver();
  try {
    const drain =
      contender === 'noop'
        ? await drainRaw(ctx, 'noop', receiver)
        : contender === 'raw' || contender === 'rawSameClient'
          ? await drainRaw(ctx, contender === 'raw' ? 'post' : 'replyflow-post', receiver)
          : await drainReplyflow(ctx, contender === 'replyflow2' ? 2 : 1, receiver, contender === 'variant' ? variantTarget(ctx) : undefined);
    // Wait a moment for stray repeats, which a correct pipeline never sends.
    await sleep(200);
    const events = config.events;
    return {
      round: roundNo,
      ...drainFigures(drain, events),
      delivered: contender === 'noop' ? events : receiver.count,
      duplicates: receiver.duplicates,
      outOfOrder: receiver.outOfOrder,
    };
  } finally {
    await receiver.close();
  }
}

export function problemsOf(contender: WorkerContender, run: WorkerRun, events: number): string[] {
  const problems: string[] = [];
  if (run.delivered !== events) problems.push(`${contender} round ${run.round}: ${run.delivered} of ${events} delivered`);
  if (run.duplicates > 0) problems.push(`${contender} round ${run.round}: ${run.duplicates} duplicate deliveries`);
  // Only replyflow promises per-phone order; the raw baselines are shown without it.
  if (isReplyflow(contender) && run.outOfOrder > 0) {
    problems.push(`${contender} round ${run.round}: ${run.outOfOrder} deliveries out of their phone's order`);
  }
  return problems;
}

function summarize(label: string, runs: WorkerRun[]): WorkerContenderResult {
  const rates = runs.map((r) => r.eventsPerSecond);
  return {
    label,
    runs,
    eventsPerSecond: median(rates),
    workerCpuUs: median(runs.map((r) => r.workerCpuUs)),
    redisCpuUs: median(runs.map((r) => r.redisCpuUs)),
    spread: spread(rates),
  };
}

export async function runWorker(ctx: BenchContext): Promise<WorkerResult> {
  const { config } = ctx;
  const all = workerContendersOf(config);
  progress(
    `worker: ${config.events} events over ${config.phones} phones, concurrency ${config.workerConcurrency}, ${config.workerRounds} round(s) of ${all.length} contenders` +
      (config.workerVariant ? ` (variant: ${JSON.stringify(config.workerVariant)})` : ''),
  );
  const runs: Record<WorkerContender, WorkerRun[]> = { noop: [], raw: [], rawSameClient: [], replyflow1: [], replyflow2: [], variant: [] };
  const problems: string[] = [];
  for (let r = 1; r <= config.workerRounds; r++) {
    const order = all.map((_, i) => all[(i + r - 1) % all.length] as WorkerContender);
    for (const contender of order) {
      const run = await measure(ctx, contender, r);
      runs[contender].push(run);
      problems.push(...problemsOf(contender, run, config.events));
      progress(
        `worker round ${r}/${config.workerRounds}: ${WORKER_LABELS[contender].padEnd(24)} ${round(run.eventsPerSecond).toString().padStart(6)} events/s  ` +
          `(${run.drainSeconds.toFixed(1)} s, worker cpu ${round(run.workerCpuUs)} µs/event, out of phone order ${run.outOfOrder}, other load ${run.otherCores.toFixed(2)} cores)`,
      );
    }
  }
  await flushAll(ctx.redis.client);
  const over = (a: WorkerContender, b: WorkerContender, i: number) => (runs[a][i] as WorkerRun).eventsPerSecond / (runs[b][i] as WorkerRun).eventsPerSecond;
  const perRound = Array.from({ length: config.workerRounds }, (_, i) => ({
    round: i + 1,
    replyflowOverRaw: over('replyflow1', 'raw', i),
    replyflowOverRawSameClient: over('replyflow1', 'rawSameClient', i),
    ...(config.workerVariant ? { variantOverReplyflow: over('variant', 'replyflow1', i) } : {}),
  }));
  const contenders = Object.fromEntries(all.map((c) => [c, summarize(WORKER_LABELS[c], runs[c])])) as WorkerResult['contenders'];
  const rate = (c: (typeof WORKER_CONTENDERS)[number]) => contenders[c].eventsPerSecond;
  return {
    events: config.events,
    phones: config.phones,
    concurrency: config.workerConcurrency,
    rounds: config.workerRounds,
    contenders,
    ...(config.workerVariant ? { variantSettings: config.workerVariant } : {}),
    ratios: {
      replyflowOverRaw: median(perRound.map((p) => p.replyflowOverRaw)),
      replyflowOverRawSameClient: median(perRound.map((p) => p.replyflowOverRawSameClient)),
      ...(config.workerVariant ? { variantOverReplyflow: median(perRound.map((p) => p.variantOverReplyflow!)) } : {}),
      replyflowOverNoop: rate('replyflow1') / rate('noop'),
      rawOverNoop: rate('raw') / rate('noop'),
      replyflow2OverRaw: rate('replyflow2') / rate('raw'),
      perRound,
    },
    otherCores: median(Object.values(runs).flat().map((r) => r.otherCores)),
    problems,
  };
}

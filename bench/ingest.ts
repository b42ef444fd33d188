// Ingest: requests/s and latency at 50 connections for (a) bare Express, (b) the
// naive pipeline and (c) replyflow's ingest, and (a′) bare Express on the HTTP
// server the ingest runs on, one process each, alternated in rounds so drift
// in the machine's speed falls on all alike.
import { freePort } from '../test/helpers/free-port.js';
import { startIngest } from './lib/apps.js';
import { startBareExpress, startNaivePipeline } from './lib/baselines.js';
import { scrapeCounter, type BenchContext } from './lib/context.js';
import { postAll } from './lib/http-load.js';
import { progress } from './lib/log.js';
import { bodyAt, SECRET, timeBase } from './lib/payloads.js';
import type { NodeProcess } from './lib/procs.js';
import { deleteDataKeys } from './lib/redis.js';
import { median, round, spread } from './lib/stats.js';
import { CpuWindow } from './lib/sys.js';
import { runWrk, writeWrkScript, type WrkResult } from './lib/wrk.js';

export const INGEST_CONTENDERS = ['bare', 'naive', 'replyflow', 'bareAppPrototypes'] as const;
export type IngestContender = (typeof INGEST_CONTENDERS)[number];
export const INGEST_LABELS: Record<IngestContender, string> = {
  bare: '(a) bare Express 5',
  naive: '(b) naive pipeline',
  replyflow: '(c) replyflow ingest',
  bareAppPrototypes: "(a′) bare Express 5 on replyflow's server",
};
const LABEL_WIDTH = Math.max(...Object.values(INGEST_LABELS).map((label) => label.length));

export interface IngestRun {
  round: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  errors: WrkResult['errors'];
  /** CPU of the server process per request, microseconds. */
  serverCpuUs: number;
  /** CPU of redis-server per request, microseconds. */
  redisCpuUs: number;
  /** CPU of the load generator (wrk) per request, microseconds. */
  wrkCpuUs: number;
  /** Cores busy with other people's work during the run (of the machine's total). */
  otherCores: number;
  /** Events the server says it stored (replyflow: its metrics; naive: the queue's length); null for bare. */
  stored: number | null;
}

export interface IngestContenderResult {
  label: string;
  runs: IngestRun[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
  worstP99Ms: number;
  serverCpuUs: number;
  redisCpuUs: number;
  wrkCpuUs: number;
  spread: number;
}

export interface IngestResult {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  contenders: Record<IngestContender, IngestContenderResult>;
  /**
   * Medians of the per-round ratios (each round's c over that round's a, b
   * and a′). c/a′ is no target: it compares replyflow with bare Express on
   * the same server construction (docs/performance.md).
   */
  ratios: {
    cOverA: number;
    cOverB: number;
    cOverAPrime: number;
    perRound: { round: number; cOverA: number; cOverB: number; cOverAPrime: number }[];
  };
  otherCores: number;
  problems: string[];
}

interface Contender {
  name: IngestContender;
  proc: NodeProcess;
  url: string;
  /** Events stored so far, read before and after each run. */
  stored: () => Promise<number | null>;
}

const WEBHOOK_PATH = '/webhooks/notifyer';

async function startContenders(ctx: BenchContext): Promise<Contender[]> {
  const redisUrl = ctx.redis.url;
  const [barePort, naivePort, ingestPort, metricsPort, barePrimePort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const bare = await startBareExpress(barePort);
  const barePrime = await startBareExpress(barePrimePort, [], 'app-prototypes');
  const naive = await startNaivePipeline(naivePort, redisUrl);
  const ingest = await startIngest(ctx, ingestPort, metricsPort);
  const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  return [
    { name: 'bare', proc: bare, url: `http://127.0.0.1:${barePort}${WEBHOOK_PATH}`, stored: async () => null },
    { name: 'naive', proc: naive, url: `http://127.0.0.1:${naivePort}${WEBHOOK_PATH}`, stored: () => ctx.redis.client.llen('bull:webhooks:wait') },
    {
      name: 'replyflow',
      proc: ingest,
      url: `http://127.0.0.1:${ingestPort}${WEBHOOK_PATH}`,
      stored: () => scrapeCounter(metricsUrl, 'replyflow_ingest_requests_total', 'outcome="queued"'),
    },
    { name: 'bareAppPrototypes', proc: barePrime, url: `http://127.0.0.1:${barePrimePort}${WEBHOOK_PATH}`, stored: async () => null },
  ];
}

/** A few real requests first: a contender that does not answer 202 to a valid webhook is not measured. */
async function checkAnswers(ctx: BenchContext, contender: Contender): Promise<void> {
  const base = timeBase(100);
  const summary = await postAll(contender.url, 10, 2, (n) => bodyAt(ctx.templates, n, base, ctx.config.phones));
  if (summary.statuses['202'] !== 10) throw new Error(`${contender.name} answered ${JSON.stringify(summary.statuses)} to 10 valid webhooks`);
}

async function measure(ctx: BenchContext, contender: Contender, seconds: number, roundNo: number): Promise<IngestRun> {
  const { config, redis, templates } = ctx;
  await deleteDataKeys(redis.client);
  const script = writeWrkScript(templates, { base: timeBase(0), phones: config.phones, secret: SECRET });
  const storedBefore = await contender.stored();
  const cpu = new CpuWindow({ server: contender.proc.pid, redis: redis.pid });
  const wrk = await runWrk(contender.url, script, { seconds, connections: config.connections }).done;
  const window = cpu.stop();
  const storedAfter = await contender.stored();
  const stored = storedAfter === null ? null : storedAfter - (storedBefore ?? 0);
  return {
    round: roundNo,
    rps: wrk.rps,
    p50Ms: wrk.p50Ms,
    p90Ms: wrk.p90Ms,
    p99Ms: wrk.p99Ms,
    maxMs: wrk.maxMs,
    requests: wrk.requests,
    errors: wrk.errors,
    serverCpuUs: ((window.processes.server ?? 0) / wrk.requests) * 1e6,
    redisCpuUs: ((window.processes.redis ?? 0) / wrk.requests) * 1e6,
    wrkCpuUs: (window.exitedChildren / wrk.requests) * 1e6,
    otherCores: window.otherCores,
    stored,
  };
}

function problemsOf(name: IngestContender, run: IngestRun, connections: number): string[] {
  const problems: string[] = [];
  const { errors } = run;
  const failed = errors.connect + errors.read + errors.write + errors.timeout + errors.status;
  if (failed > 0) problems.push(`${name} round ${run.round}: ${failed} failed requests ${JSON.stringify(errors)}`);
  // wrk counts answers it read; the server may have stored the requests in flight when wrk stopped, too.
  if (run.stored !== null && (run.stored < run.requests || run.stored > run.requests + connections)) {
    problems.push(`${name} round ${run.round}: ${run.requests} answered but ${run.stored} stored`);
  }
  return problems;
}

function summarize(label: string, runs: IngestRun[]): IngestContenderResult {
  const rps = runs.map((r) => r.rps);
  return {
    label,
    runs,
    rps: median(rps),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    worstP99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    serverCpuUs: median(runs.map((r) => r.serverCpuUs)),
    redisCpuUs: median(runs.map((r) => r.redisCpuUs)),
    wrkCpuUs: median(runs.map((r) => r.wrkCpuUs)),
    spread: spread(rps),
  };
}

export async function runIngest(ctx: BenchContext): Promise<IngestResult> {
  const { config } = ctx;
  progress(`ingest: starting bare Express, naive pipeline, replyflow ingest and bare Express on replyflow's server (${config.connections} connections, ${config.rounds} rounds of ${config.seconds} s)`);
  const contenders = await startContenders(ctx);
  try {
    for (const contender of contenders) await checkAnswers(ctx, contender);
    if (config.warmupSeconds > 0) {
      for (const contender of contenders) {
        progress(`ingest: warm-up ${contender.name} (${config.warmupSeconds} s)`);
        await measure(ctx, contender, config.warmupSeconds, 0);
      }
    }
    const runs: Record<IngestContender, IngestRun[]> = { bare: [], naive: [], replyflow: [], bareAppPrototypes: [] };
    const problems: string[] = [];
    for (let r = 1; r <= config.rounds; r++) {
      // Rotate the order each round, so no contender always runs first (or right after Redis was emptied).
      const order = contenders.map((_, i) => contenders[(i + r - 1) % contenders.length] as Contender);
      for (const contender of order) {
        const run = await measure(ctx, contender, config.seconds, r);
        runs[contender.name].push(run);
        problems.push(...problemsOf(contender.name, run, config.connections));
        progress(
          `ingest round ${r}/${config.rounds}: ${INGEST_LABELS[contender.name].padEnd(LABEL_WIDTH)} ${round(run.rps).toString().padStart(6)} req/s  ` +
            `p50 ${run.p50Ms.toFixed(1)} ms  p99 ${run.p99Ms.toFixed(1)} ms  cpu ${round(run.serverCpuUs)} µs/req  other load ${run.otherCores.toFixed(2)} cores`,
        );
      }
    }
    const perRound = Array.from({ length: config.rounds }, (_, i) => {
      const at = (name: IngestContender) => (runs[name][i] as IngestRun).rps;
      return { round: i + 1, cOverA: at('replyflow') / at('bare'), cOverB: at('replyflow') / at('naive'), cOverAPrime: at('replyflow') / at('bareAppPrototypes') };
    });
    const all = Object.values(runs).flat();
    return {
      connections: config.connections,
      seconds: config.seconds,
      warmupSeconds: config.warmupSeconds,
      rounds: config.rounds,
      contenders: Object.fromEntries(INGEST_CONTENDERS.map((c) => [c, summarize(INGEST_LABELS[c], runs[c])])) as Record<IngestContender, IngestContenderResult>,
      ratios: {
        cOverA: median(perRound.map((p) => p.cOverA)),
        cOverB: median(perRound.map((p) => p.cOverB)),
        cOverAPrime: median(perRound.map((p) => p.cOverAPrime)),
        perRound,
      },
      otherCores: median(all.map((r) => r.otherCores)),
      problems,
    };
  } finally {
    await Promise.all(contenders.map((c) => c.proc.stop()));
    await deleteDataKeys(ctx.redis.client);
  }
}

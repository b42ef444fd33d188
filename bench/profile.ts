// BENCH_PROFILE=1: CPU profiles (node --cpu-prof) of replyflow's ingest under
// the ingest load and of its worker during a drain, with bare Express, the
// naive pipeline and the raw BullMQ worker beside them, in runs of their own
// so the profiler never slows a measured figure. Writes
// bench/results/profiles/*.cpuprofile (open in Chrome DevTools or speedscope),
// a flame graph SVG of each, and bench/results/profile-summary.txt.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../test/helpers/free-port.js';
import { startIngest, startWorker } from './lib/apps.js';
import { baselineScript, startBareExpress, startNaivePipeline } from './lib/baselines.js';
import type { BenchContext } from './lib/context.js';
import { flameGraphSvg, summarizeProfile } from './lib/cpuprofile.js';
import { postAll } from './lib/http-load.js';
import { progress } from './lib/log.js';
import { bodyAt, SECRET, timeBase } from './lib/payloads.js';
import { profilesDir, resultsDir, startNode, type NodeProcess } from './lib/procs.js';
import { startReceiver, type CountingReceiver } from './lib/receiver.js';
import { deleteDataKeys, flushAll } from './lib/redis.js';
import { runWrk, writeWrkScript } from './lib/wrk.js';
import { enqueueRaw } from './worker.js';

export interface ProfileEntry {
  name: string;
  title: string;
  cpuprofile: string;
  flamegraph: string;
  /** Throughput under the profiler, for context only. */
  figure: string;
}

export interface ProfileResult {
  summaryFile: string;
  profiles: ProfileEntry[];
}

const profileArgs = (name: string) => ['--cpu-prof', `--cpu-prof-dir=${profilesDir}`, `--cpu-prof-name=${name}.cpuprofile`];

async function profileIngest(ctx: BenchContext, name: string, start: (port: number) => Promise<NodeProcess>): Promise<string> {
  const { config, redis } = ctx;
  const port = await freePort();
  const proc = await start(port);
  const url = `http://127.0.0.1:${port}/webhooks/notifyer`;
  try {
    const script = writeWrkScript(ctx.templates, { base: timeBase(0), phones: config.phones, secret: SECRET });
    if (config.warmupSeconds > 0) await runWrk(url, script, { seconds: config.warmupSeconds, connections: config.connections }).done;
    await deleteDataKeys(redis.client);
    const measured = writeWrkScript(ctx.templates, { base: timeBase(0), phones: config.phones, secret: SECRET });
    const wrk = await runWrk(url, measured, { seconds: config.seconds, connections: config.connections }).done;
    progress(`profile: ${name} under the profiler: ${Math.round(wrk.rps)} req/s, p99 ${wrk.p99Ms.toFixed(1)} ms`);
    return `${Math.round(wrk.rps)} req/s at ${config.connections} connections, p99 ${wrk.p99Ms.toFixed(1)} ms (under the profiler)`;
  } finally {
    await proc.stop();
    await deleteDataKeys(redis.client);
  }
}

/** Waits until the receiver has all config.events; the rate they came at, as the profile's figure. */
async function drainFigure(ctx: BenchContext, receiver: CountingReceiver, name: string): Promise<string> {
  const { events } = ctx.config;
  await receiver.waitFor(events, Math.max(120_000, events * 20));
  const rate = (events - 1) / ((receiver.lastAt - receiver.firstAt) / 1000);
  progress(`profile: ${name} under the profiler: ${Math.round(rate)} events/s`);
  return `${Math.round(rate)} events/s draining ${events} events (under the profiler)`;
}

async function profileReplyflowWorker(ctx: BenchContext): Promise<string> {
  const { config, redis } = ctx;
  await flushAll(redis.client);
  const receiver = await startReceiver();
  const [port, metricsPort] = await Promise.all([freePort(), freePort()]);
  const ingest = await startIngest(ctx, port, metricsPort);
  let worker: NodeProcess | undefined;
  try {
    const base = timeBase(config.events);
    await postAll(`http://127.0.0.1:${port}/webhooks/notifyer`, config.events, config.connections, (n) => bodyAt(ctx.templates, n, base, config.phones));
    worker = await startWorker(ctx, receiver.url, profileArgs('worker'));
    return await drainFigure(ctx, receiver, 'replyflow worker');
  } finally {
    await worker?.stop();
    await ingest.stop();
    await receiver.close();
    await flushAll(redis.client);
  }
}

async function profileRawWorker(ctx: BenchContext): Promise<string> {
  const { config, redis } = ctx;
  await flushAll(redis.client);
  const receiver = await startReceiver();
  await enqueueRaw(ctx, config.events);
  const worker = await startNode(
    'raw-worker-post',
    baselineScript('raw-worker'),
    {
      REDIS_URL: redis.url,
      QUEUE: 'forward',
      PREFIX: 'raw',
      CONCURRENCY: String(config.workerConcurrency),
      MODE: 'post',
      FORWARD_URL: receiver.url,
      TARGET: String(config.events),
    },
    { ready: /raw worker started/, nodeArgs: profileArgs('raw-worker') },
  );
  try {
    return await drainFigure(ctx, receiver, 'raw BullMQ worker');
  } finally {
    await worker.stop();
    await receiver.close();
    await flushAll(redis.client);
  }
}

export async function runProfile(ctx: BenchContext): Promise<ProfileResult> {
  const { redis } = ctx;
  mkdirSync(profilesDir, { recursive: true });
  const plan: { name: string; title: string; run: () => Promise<string> }[] = [
    {
      name: 'ingest',
      title: 'replyflow ingest under wrk load',
      run: () =>
        profileIngest(ctx, 'replyflow ingest', async (port) => startIngest(ctx, port, await freePort(), profileArgs('ingest'))),
    },
    {
      name: 'bare-express',
      title: 'bare Express (a) under wrk load',
      run: () => profileIngest(ctx, 'bare Express', (port) => startBareExpress(port, profileArgs('bare-express'))),
    },
    {
      name: 'naive-pipeline',
      title: 'naive pipeline (b) under wrk load',
      run: () => profileIngest(ctx, 'naive pipeline', (port) => startNaivePipeline(port, redis.url, profileArgs('naive-pipeline'))),
    },
    { name: 'worker', title: 'replyflow worker draining the backlog', run: () => profileReplyflowWorker(ctx) },
    { name: 'raw-worker', title: 'raw BullMQ worker + POST draining the same backlog', run: () => profileRawWorker(ctx) },
  ];
  const profiles: ProfileEntry[] = [];
  const summaries: string[] = [];
  for (const { name, title, run } of plan) {
    progress(`profile: ${title}`);
    const cpuprofile = join(profilesDir, `${name}.cpuprofile`);
    rmSync(cpuprofile, { force: true });
    const figure = await run();
    if (!existsSync(cpuprofile)) throw new Error(`no profile written at ${cpuprofile}`);
    const flamegraph = join(profilesDir, `${name}.svg`);
    writeFileSync(flamegraph, flameGraphSvg(cpuprofile, `${title}: ${figure}`));
    summaries.push(summarizeProfile(cpuprofile, `${title}: ${figure}`));
    profiles.push({ name, title, cpuprofile, flamegraph, figure });
  }
  const summaryFile = join(resultsDir, 'profile-summary.txt');
  writeFileSync(
    summaryFile,
    [
      `CPU profiles from npm run bench (BENCH_PROFILE=1), ${new Date().toISOString()}.`,
      'Each process ran alone under node --cpu-prof (1 ms sampling); flame graphs beside the .cpuprofile files.',
      '',
      ...summaries,
    ].join('\n'),
  );
  progress(`profile: wrote ${summaryFile}`);
  return { summaryFile, profiles };
}

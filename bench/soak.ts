// Soak: replyflow's ingest and one worker at a steady rate for BENCH_SOAK_SECONDS
// (default 5 minutes), sampling their RSS. "Start" is the level of the first
// minute after a warm-up (JIT, pools and heaps reaching their working size),
// "end" the level of the last minute: the median of each window's samples.
import { freePort } from '../test/helpers/free-port.js';
import { startIngest, startWorker } from './lib/apps.js';
import type { BenchContext } from './lib/context.js';
import { postSteadily } from './lib/http-load.js';
import { progress, sleep } from './lib/log.js';
import { bodyAt, timeBase } from './lib/payloads.js';
import type { NodeProcess } from './lib/procs.js';
import { startReceiver } from './lib/receiver.js';
import { flushAll, usedMemory } from './lib/redis.js';
import { median } from './lib/stats.js';
import { CpuWindow, rssBytes } from './lib/sys.js';

const SAMPLE_EVERY_MS = 5_000;

export interface RssSample {
  atS: number;
  ingest: number;
  worker: number;
  redisUsedMemory: number;
}

export interface SoakProcess {
  startBytes: number;
  endBytes: number;
  maxBytes: number;
  growth: number;
}

export interface SoakResult {
  seconds: number;
  rate: number;
  warmupSeconds: number;
  sent: number;
  delivered: number;
  statuses: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  duplicates: number;
  outOfOrder: number;
  ingest: SoakProcess;
  worker: SoakProcess;
  redisUsedMemory: { startBytes: number; endBytes: number };
  otherCores: number;
  samples: RssSample[];
  problems: string[];
}

/** A level's window: a minute, or a quarter of a shorter soak, so the two windows never overlap. */
const LEVEL_WINDOW_S = 60;

/**
 * RSS moves in a sawtooth while V8 grows and shrinks its heap (seen here:
 * 120 to 162 MB and back within a minute, with no trend), so one sample at
 * each end measures where the teeth fell. A window's median is its level; a
 * leak still shows, as a higher level at the end.
 */
function growthOf(samples: RssSample[], from: number, key: 'ingest' | 'worker'): SoakProcess {
  const measured = samples.slice(from);
  const first = (measured[0] as RssSample).atS;
  const last = (measured[measured.length - 1] as RssSample).atS;
  const window = Math.min(LEVEL_WINDOW_S, (last - first) / 4);
  const level = (inWindow: (s: RssSample) => boolean) => median(measured.filter(inWindow).map((s) => s[key]));
  const start = level((s) => s.atS <= first + window);
  const end = level((s) => s.atS >= last - window);
  return { startBytes: start, endBytes: end, maxBytes: Math.max(...measured.map((s) => s[key])), growth: (end - start) / start };
}

export async function runSoak(ctx: BenchContext): Promise<SoakResult> {
  const { config, redis } = ctx;
  const seconds = config.soakSeconds;
  const warmupSeconds = Math.min(30, Math.max(5, Math.round(seconds / 10)));
  progress(`soak: ${config.soakRate} webhooks/s for ${seconds} s through ingest and one worker (RSS start taken after ${warmupSeconds} s)`);
  await flushAll(redis.client);
  const receiver = await startReceiver();
  const [port, metricsPort] = await Promise.all([freePort(), freePort()]);
  const started: NodeProcess[] = [];
  try {
    const ingest = await startIngest(ctx, port, metricsPort);
    started.push(ingest);
    const worker = await startWorker(ctx, receiver.url);
    started.push(worker);

    const samples: RssSample[] = [];
    const t0 = performance.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        samples.push({
          atS: (performance.now() - t0) / 1000,
          ingest: rssBytes(ingest.pid),
          worker: rssBytes(worker.pid),
          redisUsedMemory: await usedMemory(redis.client),
        });
        await sleep(SAMPLE_EVERY_MS);
      }
    })();
    const cpu = new CpuWindow({ ingest: ingest.pid, worker: worker.pid, redis: redis.pid });
    const base = timeBase(Math.ceil(config.soakRate * seconds));
    let lastReport = 0;
    const sent = await postSteadily(`http://127.0.0.1:${port}/webhooks/notifyer`, config.soakRate, seconds, (n) => bodyAt(ctx.templates, n, base, config.phones), (count, elapsed) => {
      if (elapsed - lastReport >= 30) {
        lastReport = elapsed;
        const last = samples[samples.length - 1];
        progress(
          `soak ${Math.round(elapsed)}/${seconds} s: ${count} sent, ${receiver.count} delivered, ` +
            `RSS ingest ${mb(last?.ingest)} worker ${mb(last?.worker)}`,
        );
      }
    });
    const accepted = sent.statuses['202'] ?? 0;
    // The worker should keep up; give its last events a moment to arrive.
    await receiver.waitFor(accepted, 60_000).catch(() => {});
    const window = cpu.stop();
    sampling = false;
    await sampler;
    samples.push({ atS: (performance.now() - t0) / 1000, ingest: rssBytes(ingest.pid), worker: rssBytes(worker.pid), redisUsedMemory: await usedMemory(redis.client) });

    const from = Math.max(0, samples.findIndex((s) => s.atS >= warmupSeconds));
    const problems: string[] = [];
    if (accepted !== sent.sent) problems.push(`soak: ${sent.sent - accepted} of ${sent.sent} webhooks not answered 202 (${JSON.stringify(sent.statuses)})`);
    if (receiver.count !== accepted) problems.push(`soak: ${receiver.count} of ${accepted} accepted events delivered`);
    if (receiver.duplicates > 0) problems.push(`soak: ${receiver.duplicates} duplicate deliveries`);
    if (receiver.outOfOrder > 0) problems.push(`soak: ${receiver.outOfOrder} deliveries out of their phone's order`);
    const result: SoakResult = {
      seconds,
      rate: config.soakRate,
      warmupSeconds,
      sent: sent.sent,
      delivered: receiver.count,
      statuses: sent.statuses,
      p50Ms: sent.p50Ms,
      p99Ms: sent.p99Ms,
      duplicates: receiver.duplicates,
      outOfOrder: receiver.outOfOrder,
      ingest: growthOf(samples, from, 'ingest'),
      worker: growthOf(samples, from, 'worker'),
      redisUsedMemory: { startBytes: (samples[from] as RssSample).redisUsedMemory, endBytes: (samples[samples.length - 1] as RssSample).redisUsedMemory },
      otherCores: window.otherCores,
      samples,
      problems,
    };
    progress(
      `soak: RSS ingest ${mb(result.ingest.startBytes)} → ${mb(result.ingest.endBytes)} (${pct(result.ingest.growth)}), ` +
        `worker ${mb(result.worker.startBytes)} → ${mb(result.worker.endBytes)} (${pct(result.worker.growth)}); ` +
        `p50 ${sent.p50Ms.toFixed(1)} ms p99 ${sent.p99Ms.toFixed(1)} ms; ${receiver.count}/${sent.sent} delivered`,
    );
    return result;
  } finally {
    await Promise.all(started.map((p) => p.stop()));
    await receiver.close();
    await flushAll(redis.client);
  }
}

const mb = (bytes: number | undefined) => (bytes === undefined ? '?' : `${(bytes / 1048576).toFixed(1)} MB`);
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

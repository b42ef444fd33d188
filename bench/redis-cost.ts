// Redis cost per event, the figures a user sizes Redis with: memory per queued
// event (a backlog) and per completed event inside the dedupe window (from
// INFO memory), and commands per event (from INFO commandstats), measured on
// replyflow's ingest and worker as they ship.
import type { Redis } from 'ioredis';
import { freePort } from '../test/helpers/free-port.js';
import { startIngest, startWorker } from './lib/apps.js';
import type { BenchContext } from './lib/context.js';
import { postAll } from './lib/http-load.js';
import { progress, sleep } from './lib/log.js';
import { bodyAt, timeBase } from './lib/payloads.js';
import type { NodeProcess } from './lib/procs.js';
import { startReceiver } from './lib/receiver.js';
import { commandStats, flushAll, usedMemory, type CommandStat } from './lib/redis.js';
import { CpuWindow } from './lib/sys.js';

export interface KeyGroup {
  /** The key with ids and phones replaced: `replyflow:done:<id>`. */
  pattern: string;
  type: string;
  keys: number;
  bytes: number;
}

export interface CommandCost {
  /** Commands per event, Lua scripts' own commands included. */
  commandsPerEvent: number;
  /** EVALSHA/EVAL/FCALL calls per event (one client round trip each, at most). */
  scriptCallsPerEvent: number;
  /** CPU of redis-server per event (networking included), microseconds, from /proc. */
  redisCpuUsPerEvent: number;
  top: { command: string; perEvent: number }[];
}

export interface RedisCostResult {
  events: number;
  phones: number;
  bytesPerQueuedEvent: number;
  /** used_memory growth over the first `events` completed events, divided by their number (fixed costs included). */
  bytesPerCompletedEvent: number;
  /**
   * What one more completed event adds once the fixed costs are paid (event
   * streams at their cap, every phone seen): measured over a second batch of
   * `extraEvents`. This is the figure to multiply by events per dedupe window.
   */
  bytesPerCompletedEventMarginal: number;
  extraEvents: number;
  /** The part that does not grow with events: capped streams, per-phone keys, queue metadata. */
  fixedBytes: number;
  /** Whether BullMQ's event streams were at their length cap before the second batch (else the marginal figure includes their growth). */
  streamsAtCap: boolean;
  keyGroups: KeyGroup[];
  ingest: CommandCost;
  worker: CommandCost;
  total: { commandsPerEvent: number; scriptCallsPerEvent: number; redisCpuUsPerEvent: number };
}

const SCRIPT_COMMANDS = new Set(['evalsha', 'eval', 'fcall', 'evalsha_ro', 'eval_ro', 'fcall_ro']);

function commandCost(stats: Record<string, CommandStat>, events: number, redisCpuSeconds: number): CommandCost {
  // The benchmark's own INFO and CONFIG calls are not the system's.
  const entries = Object.entries(stats).filter(([name]) => !name.startsWith('config') && name !== 'info');
  const calls = entries.reduce((sum, [, s]) => sum + s.calls, 0);
  const scriptCalls = entries.filter(([name]) => SCRIPT_COMMANDS.has(name)).reduce((sum, [, s]) => sum + s.calls, 0);
  return {
    commandsPerEvent: calls / events,
    scriptCallsPerEvent: scriptCalls / events,
    redisCpuUsPerEvent: (redisCpuSeconds / events) * 1e6,
    top: entries
      .map(([command, s]) => ({ command, perEvent: s.calls / events }))
      .sort((a, b) => b.perEvent - a.perEvent)
      .slice(0, 12),
  };
}

function patternOf(key: string): string {
  return key
    .replace(/[0-9a-f]{64}/g, '<id>')
    .replace(/:\d{6,}(?=:|$)/g, ':<phone>')
    .replace(/:\d+(?=:|$)/g, ':<n>');
}

/** BullMQ trims each queue's event stream to about 10,000 entries (its default `maxLenEvents`). */
async function streamsAtCap(client: Redis): Promise<boolean> {
  const streams: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 2000, 'TYPE', 'stream');
    cursor = next;
    streams.push(...keys);
  } while (cursor !== '0');
  const lengths = await Promise.all(streams.map((key) => client.xlen(key)));
  return lengths.length > 0 && Math.min(...lengths) >= 9_000;
}

async function keyGroups(client: Redis): Promise<KeyGroup[]> {
  const groups = new Map<string, KeyGroup>();
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'COUNT', 2000);
    cursor = next;
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0').type(key);
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const bytes = Number(replies[2 * i]?.[1] ?? 0);
      const type = String(replies[2 * i + 1]?.[1] ?? '?');
      const pattern = patternOf(key);
      const group = groups.get(pattern) ?? { pattern, type, keys: 0, bytes: 0 };
      group.keys++;
      group.bytes += bytes;
      groups.set(pattern, group);
    });
  } while (cursor !== '0');
  return [...groups.values()].sort((a, b) => b.bytes - a.bytes);
}

export async function runRedisCost(ctx: BenchContext): Promise<RedisCostResult> {
  const { config, redis } = ctx;
  const client = redis.client;
  const events = config.events;
  progress(`redis: memory and commands per event, ${events} events through replyflow's ingest and one worker`);
  await flushAll(client);
  const receiver = await startReceiver();
  const [port, metricsPort] = await Promise.all([freePort(), freePort()]);
  const ingest = await startIngest(ctx, port, metricsPort);
  let worker: NodeProcess | undefined;
  try {
    // A worker that has run once leaves its queues' meta as in production; then the backlog builds with none running.
    await (await startWorker(ctx, receiver.url)).stop();
    await sleep(500);
    const before = await usedMemory(client);
    await client.config('RESETSTAT');
    const ingestCpu = new CpuWindow({ redis: redis.pid });

    const base = timeBase(events);
    const sent = await postAll(`http://127.0.0.1:${port}/webhooks/notifyer`, events, config.connections, (n) => bodyAt(ctx.templates, n, base, config.phones));
    if (sent.statuses['202'] !== events) throw new Error(`ingest answered ${JSON.stringify(sent.statuses)} to ${events} new events`);
    const queued = await usedMemory(client);
    const ingestRedisCpu = ingestCpu.stop().processes.redis ?? 0;
    const ingestStats = await commandStats(client);
    await client.config('RESETSTAT');
    const workerCpu = new CpuWindow({ redis: redis.pid });

    worker = await startWorker(ctx, receiver.url);
    await receiver.waitFor(events, Math.max(120_000, events * 20), (count) => progress(`redis: ${count}/${events} delivered`));
    await sleep(1000); // the last jobs' completion lands just after their POST is answered
    const workerRedisCpu = workerCpu.stop().processes.redis ?? 0;
    const workerStats = await commandStats(client);
    const completed = await usedMemory(client);
    const capped = await streamsAtCap(client);

    // A second batch, with the worker running, once the streams are at their cap and every phone is known.
    const extraEvents = Math.max(100, Math.round(events / 4));
    const extraBase = timeBase(extraEvents);
    const extra = await postAll(`http://127.0.0.1:${port}/webhooks/notifyer`, extraEvents, config.connections, (n) =>
      bodyAt(ctx.templates, n, extraBase, config.phones),
    );
    if (extra.statuses['202'] !== extraEvents) throw new Error(`ingest answered ${JSON.stringify(extra.statuses)} to ${extraEvents} new events`);
    await receiver.waitFor(events + extraEvents, Math.max(120_000, extraEvents * 20));
    await sleep(1000);
    const completedMore = await usedMemory(client);
    const groups = await keyGroups(client);
    const marginal = (completedMore - completed) / extraEvents;

    const ingestCost = commandCost(ingestStats, events, ingestRedisCpu);
    const workerCost = commandCost(workerStats, events, workerRedisCpu);
    const result: RedisCostResult = {
      events,
      phones: config.phones,
      bytesPerQueuedEvent: (queued - before) / events,
      bytesPerCompletedEvent: (completed - before) / events,
      bytesPerCompletedEventMarginal: marginal,
      extraEvents,
      fixedBytes: completed - before - marginal * events,
      streamsAtCap: capped,
      keyGroups: groups,
      ingest: ingestCost,
      worker: workerCost,
      total: {
        commandsPerEvent: ingestCost.commandsPerEvent + workerCost.commandsPerEvent,
        scriptCallsPerEvent: ingestCost.scriptCallsPerEvent + workerCost.scriptCallsPerEvent,
        redisCpuUsPerEvent: ingestCost.redisCpuUsPerEvent + workerCost.redisCpuUsPerEvent,
      },
    };
    progress(
      `redis: ${Math.round(result.bytesPerQueuedEvent)} bytes per queued event, ${Math.round(result.bytesPerCompletedEvent)} per completed event ` +
        `over ${events}; ${Math.round(result.bytesPerCompletedEventMarginal)} per further event, plus ${(result.fixedBytes / 1048576).toFixed(1)} MB that does not grow; ` +
        `${result.total.commandsPerEvent.toFixed(1)} commands per event (ingest ${ingestCost.commandsPerEvent.toFixed(1)}, worker ${workerCost.commandsPerEvent.toFixed(1)}), ` +
        `redis cpu ${Math.round(result.total.redisCpuUsPerEvent)} µs per event`,
    );
    return result;
  } finally {
    await worker?.stop();
    await ingest.stop();
    await receiver.close();
    await flushAll(client);
  }
}

// Scale: events/s draining the same backlog with 1 Redis master (the bench's
// standalone redis-server, QUEUE_SHARDS=1) and 3 masters (a private Redis
// Cluster, QUEUE_SHARDS=6), each with 1, 2 and 4 worker processes. The drain is
// worker.ts's own (drainReplyflow): events posted through replyflow's ingest while
// no worker runs, then N workers started and timed at a local receiver.
// Two masters are absent: `redis-cli --cluster create` needs at least three,
// and a 2-master cluster built by hand would test the harness, not replyflow.
// Runs with BENCH_SCALE=1 (or BENCH_SECTIONS=scale); settings in bench/README.md.
import { Redis } from 'ioredis';
import type { BenchContext } from './lib/context.js';
import { progress, sleep } from './lib/log.js';
import { startReceiver } from './lib/receiver.js';
import { flushAll, rewriteAof } from './lib/redis.js';
import { median, round, spread } from './lib/stats.js';
import { drainFigures, drainReplyflow, type DrainTarget } from './worker.js';

/**
 * What scale.ts uses of test/helpers/redis-cluster.ts. That file is loaded at run time rather than
 * imported, so `tsc -p bench` does not type-check it: at this commit it assigns a readonly `pid`
 * (restartNode), an error of the test helper's own that the bench cannot fix.
 */
interface RedisCluster {
  readonly seeds: string;
  readonly nodes: { host: string; port: number; pid: number }[];
  env(): { REDIS_CLUSTER_NODES: string };
  cleanup(): Promise<void>;
}
async function startRedisCluster(opts: { masters: number; appendonly: boolean }): Promise<RedisCluster> {
  const helper = new URL('../test/helpers/redis-cluster.js', import.meta.url).href;
  const mod = (await import(helper)) as { startRedisCluster(o: typeof opts): Promise<RedisCluster> };
  return mod.startRedisCluster(opts);
}

export const SCALE_MASTERS = [1, 3] as const;
export const SCALE_WORKERS = [1, 2, 4] as const;
/** QUEUE_SHARDS per master on the cluster: 2×, as docs/scaling.md advises. */
const SHARDS_PER_MASTER = 2;

export interface ScaleRun {
  round: number;
  eventsPerSecond: number;
  drainSeconds: number;
  workerCpuUs: number;
  redisCpuUs: number;
  /** Cores the workers and redis-server(s) kept busy during the drain. */
  busyCores: number;
  otherCores: number;
  delivered: number;
  duplicates: number;
  outOfOrder: number;
}

export interface ScaleCell {
  masters: number;
  /** `standalone` for 1 master, `cluster` for more. */
  redis: 'standalone' | 'cluster';
  shards: number;
  workers: number;
  runs: ScaleRun[];
  eventsPerSecond: number;
  workerCpuUs: number;
  redisCpuUs: number;
  busyCores: number;
  spread: number;
}

export interface ScaleResult {
  events: number;
  phones: number;
  concurrency: number;
  rounds: number;
  cores: number;
  masters: number[];
  workers: number[];
  cells: ScaleCell[];
  /** Why some cells are missing, and what the figures can and cannot show. */
  notes: string[];
  otherCores: number;
  problems: string[];
}

interface Backend {
  masters: number;
  redis: 'standalone' | 'cluster';
  shards: number;
  target: Omit<DrainTarget, 'events'>;
  flush(): Promise<void>;
}

function standalone(ctx: BenchContext): Backend {
  return {
    masters: 1,
    redis: 'standalone',
    shards: 1,
    target: { env: { QUEUE_SHARDS: '1' }, redisPids: [ctx.redis.pid] },
    flush: () => flushAll(ctx.redis.client),
  };
}

/** A private cluster, persisted as the bench's standalone server is (AOF, fsync every second, no rewrite during a drain). */
async function cluster(masters: number): Promise<{ backend: Backend; cluster: RedisCluster; clients: Redis[] }> {
  const c = await startRedisCluster({ masters, appendonly: true });
  const clients = c.nodes.map((n) => new Redis({ host: n.host, port: n.port, lazyConnect: false }));
  // The harness runs appendfsync always (for its failover tests); match the standalone bench server.
  for (const client of clients) {
    await client.config('SET', 'appendfsync', 'everysec');
    await client.config('SET', 'auto-aof-rewrite-percentage', '0');
  }
  const shards = masters * SHARDS_PER_MASTER;
  const backend: Backend = {
    masters,
    redis: 'cluster',
    shards,
    target: { env: { ...c.env(), QUEUE_SHARDS: String(shards) }, redisPids: c.nodes.map((n) => n.pid) },
    flush: async () => {
      for (const client of clients) {
        await client.flushall();
        await rewriteAof(client);
      }
    },
  };
  return { backend, cluster: c, clients };
}

async function measureCell(ctx: BenchContext, backend: Backend, workers: number, roundNo: number): Promise<ScaleRun> {
  const events = ctx.config.scaleEvents;
  await backend.flush();
  const receiver = await startReceiver();
  try {
    const drain = await drainReplyflow(ctx, workers, receiver, { ...backend.target, events });
    await sleep(200); // stray repeats, which a correct pipeline never sends
    return {
      round: roundNo,
      ...drainFigures(drain, events),
      busyCores: (drain.workerCpu + drain.redisCpu) / drain.seconds,
      delivered: receiver.count,
      duplicates: receiver.duplicates,
      outOfOrder: receiver.outOfOrder,
    };
  } finally {
    await receiver.close();
  }
}

function summarize(backend: Backend, workers: number, runs: ScaleRun[]): ScaleCell {
  const rates = runs.map((r) => r.eventsPerSecond);
  return {
    masters: backend.masters,
    redis: backend.redis,
    shards: backend.shards,
    workers,
    runs,
    eventsPerSecond: median(rates),
    workerCpuUs: median(runs.map((r) => r.workerCpuUs)),
    redisCpuUs: median(runs.map((r) => r.redisCpuUs)),
    busyCores: median(runs.map((r) => r.busyCores)),
    spread: spread(rates),
  };
}

/** What the figures can and cannot show; computed from the figures, so render.ts redraws them too. */
export function scaleNotes(r: Pick<ScaleResult, 'cores' | 'otherCores' | 'cells'>): string[] {
  const { cores, otherCores, cells } = r;
  const cpu = (masters: number, workers: number) => cells.find((c) => c.masters === masters && c.workers === workers)?.workerCpuUs;
  const w1 = cpu(SCALE_MASTERS[SCALE_MASTERS.length - 1] as number, 1);
  const w4 = cpu(SCALE_MASTERS[SCALE_MASTERS.length - 1] as number, 4);
  return [
    '2 masters are not measured: `redis-cli --cluster create` (which the cluster harness uses) refuses fewer than 3 masters, ' +
      'and 1 master is the standalone server replyflow runs on by default (a 1-master cluster cannot be created that way either).',
    `This machine has ${cores} core${cores === 1 ? '' : 's'}, shared by redis-server(s), the ingest (idle during the drain), every worker, ` +
      'the receiver and the benchmark itself. Once the workers and Redis keep about that many cores busy (the "busy cores" figure), ' +
      'more workers or more masters cannot add throughput here: they only split the same cores into more processes. ' +
      'So these figures show where this machine saturates and what a cluster costs per event (ioredis Cluster client, no auto-pipelining, ' +
      'more processes), not how replyflow scales on machines with a core per process. Size from the per-event costs (docs/scaling.md), ' +
      'not from this table.',
    `Other work on the machine kept a median of ${otherCores.toFixed(2)} cores busy during these drains, so about ${Math.max(0, cores - otherCores).toFixed(1)} ` +
      'were left for the processes under test; cells measured seconds apart saw different shares of it, so differences of 20-30% between cells are noise here.',
    ...(w1 !== undefined && w4 !== undefined
      ? [
          `Worker CPU per event grows with the number of worker processes (on the cluster ${Math.round(w1)} µs with 1 worker, ${Math.round(w4)} µs with 4): ` +
            'on 2 cores the processes preempt each other, and each worker serves every shard, so its fixed per-shard work is repeated per worker ' +
            '(this run does not separate the two; pinning workers with `WORKER_SHARDS` is not measured).',
        ]
      : []),
  ];
}

export async function runScale(ctx: BenchContext, cores: number): Promise<ScaleResult> {
  const { config } = ctx;
  const rounds = config.workerRounds;
  progress(
    `scale: ${config.scaleEvents} events over ${config.phones} phones per cell, masters ${SCALE_MASTERS.join(', ')} × workers ${SCALE_WORKERS.join(', ')}, ${rounds} round(s)`,
  );
  const cells: ScaleCell[] = [];
  const problems: string[] = [];
  for (const masters of SCALE_MASTERS) {
    const started = masters === 1 ? undefined : await cluster(masters);
    const backend = started ? started.backend : standalone(ctx);
    if (started) progress(`scale: Redis Cluster of ${masters} masters on ${started.cluster.seeds}, QUEUE_SHARDS=${backend.shards}`);
    try {
      const runs: Record<number, ScaleRun[]> = {};
      for (let r = 1; r <= rounds; r++) {
        // Rotate the order of the worker counts round by round, as worker.ts does with its contenders.
        const order = SCALE_WORKERS.map((_, i) => SCALE_WORKERS[(i + r - 1) % SCALE_WORKERS.length] as number);
        for (const workers of order) {
          const run = await measureCell(ctx, backend, workers, r);
          (runs[workers] ??= []).push(run);
          const label = `${masters} master${masters === 1 ? '' : 's'}, ${workers} worker${workers === 1 ? '' : 's'}`;
          if (run.delivered !== config.scaleEvents) problems.push(`scale ${label} round ${r}: ${run.delivered} of ${config.scaleEvents} delivered`);
          if (run.duplicates > 0) problems.push(`scale ${label} round ${r}: ${run.duplicates} duplicate deliveries`);
          if (run.outOfOrder > 0) problems.push(`scale ${label} round ${r}: ${run.outOfOrder} deliveries out of their phone's order`);
          progress(
            `scale round ${r}/${rounds}: ${label.padEnd(22)} ${round(run.eventsPerSecond).toString().padStart(6)} events/s  ` +
              `(${run.drainSeconds.toFixed(1)} s, worker cpu ${round(run.workerCpuUs)} µs/event, redis cpu ${round(run.redisCpuUs)} µs/event, ` +
              `busy ${run.busyCores.toFixed(2)} cores, other load ${run.otherCores.toFixed(2)} cores)`,
          );
        }
      }
      for (const workers of SCALE_WORKERS) cells.push(summarize(backend, workers, runs[workers] ?? []));
    } finally {
      if (started) {
        for (const client of started.clients) client.disconnect();
        await started.cluster.cleanup();
      } else {
        await flushAll(ctx.redis.client);
      }
    }
  }
  const otherCores = median(cells.flatMap((c) => c.runs.map((r) => r.otherCores)));
  return {
    events: config.scaleEvents,
    phones: config.phones,
    concurrency: config.workerConcurrency,
    rounds,
    cores,
    masters: [...SCALE_MASTERS],
    workers: [...SCALE_WORKERS],
    cells,
    notes: scaleNotes({ cores, otherCores, cells }),
    otherCores,
    problems,
  };
}

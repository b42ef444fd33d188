import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Gauge } from 'prom-client';
import type { Config } from './config.js';
import type { Logger } from './logger.js';

export { Cluster, Redis };

/** A standalone connection, or one to Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisClient = Redis | Cluster;

/**
 * `producer`: the ingest's connection. It must fail fast so a webhook gets a 503
 * within a second instead of waiting in ioredis's offline queue.
 * `worker`: BullMQ's recommended worker settings: commands wait for the
 * connection and it is retried forever.
 */
export function createRedis(
  config: Pick<Config, 'redisUrl' | 'redisClusterNodes'>,
  purpose: 'producer' | 'worker',
  { autoPipelining = true }: { autoPipelining?: boolean } = {},
): RedisClient {
  const retry = (times: number) => Math.min(100 * times, 2000);
  const options: RedisOptions =
    purpose === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1000 }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null };
  if (config.redisClusterNodes?.length) {
    const nodes = config.redisClusterNodes.map(clusterSeed);
    // BullMQ's documented way to run on Redis Cluster: an ioredis Cluster, with hash-tagged prefixes (keyspace.ts).
    const { enableOfflineQueue, ...perNode } = options;
    const clusterOptions: ClusterOptions = {
      redisOptions: perNode,
      clusterRetryStrategy: retry,
      enableOfflineQueue,
      // ioredis's auto-pipelining fails on Cluster for commands added by
      // defineCommand ("pipeline[functionName] is not a function"), which BullMQ relies on.
      enableAutoPipelining: false,
      scaleReads: 'master',
    };
    return new Cluster(nodes, clusterOptions);
  }
  // Auto-pipelining gathers the commands made in one turn into one write, but
  // sends a turn's batch only once the previous one is answered: the ingest and
  // the worker batch their hot scripts themselves and turn it off.
  return new Redis(config.redisUrl, { ...options, retryStrategy: retry, enableAutoPipelining: autoPipelining });
}

export interface RedisHealth {
  isUp(): boolean;
  stop(): void;
}

/**
 * Readiness must turn false when Redis hangs as well as when it is gone, and the
 * connection status alone only sees the latter, so a PING with a deadline runs every second.
 */
export function watchRedis(redis: RedisClient, onChange: (up: boolean) => void, intervalMs = 1000): RedisHealth {
  // Starts down and reports only changes, so a process that starts while Redis is fine logs nothing alarming.
  let up = false;
  const set = (next: boolean) => {
    if (next !== up) {
      up = next;
      onChange(up);
    }
  };
  const probe = async () => {
    if (redis.status !== 'ready') return set(false);
    try {
      await withDeadline(redis.ping(), intervalMs);
      set(true);
    } catch {
      set(false);
    }
  };
  const timer = setInterval(() => void probe(), intervalMs);
  timer.unref();
  redis.on('ready', () => void probe());
  redis.on('close', () => set(false));
  return { isUp: () => up, stop: () => clearInterval(timer) };
}

export class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(ms)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function evictionPolicy(redis: RedisClient): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    return reply[1];
  } catch {
    return undefined; // managed Redis services often forbid CONFIG
  }
}

export interface RedisMonitorOptions {
  logger: Logger;
  redisUp: Gauge;
  /** What an outage means for this process, for the log line. */
  whenDown: string;
  /** Exit 1 instead of warning when Redis may evict keys (REQUIRE_SAFE_REDIS). */
  refuseEviction: boolean;
}

/**
 * Connection health as both processes report it: `replyflow_redis_up`, one log
 * line per change, and a loud warning (or refusal) when Redis could evict
 * queued events under memory pressure.
 */
export function monitorRedis(redis: RedisClient, options: RedisMonitorOptions): RedisHealth {
  const { logger } = options;
  redis.on('error', () => {}); // reported through watchRedis, once per change
  const health = watchRedis(redis, (up) => {
    options.redisUp.set(up ? 1 : 0);
    if (up) logger.info('redis reachable');
    else logger.warn(`redis unreachable: ${options.whenDown}`);
  });
  redis.once('ready', async () => {
    const policy = await evictionPolicy(redis);
    if (policy === undefined || policy === 'noeviction') return;
    if (options.refuseEviction) {
      logger.fatal({ policy }, 'Redis maxmemory-policy is not noeviction and REQUIRE_SAFE_REDIS=true: refusing to run');
      process.exit(1);
    }
    logger.warn({ policy }, 'Redis maxmemory-policy is not noeviction: queued events may be evicted under memory pressure');
  });
  return health;
}

/** Resolves once the connection (on a cluster, the slot map) is ready. */
export function redisReady(redis: RedisClient): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => redis.once('ready', () => resolve()));
}

/** A REDIS_CLUSTER_NODES entry (`host:port`, checked by the config; an IPv6 host in brackets) as ioredis takes it. */
export function clusterSeed(seed: string): { host: string; port: number } {
  const colon = seed.lastIndexOf(':');
  return { host: seed.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(seed.slice(colon + 1)) };
}

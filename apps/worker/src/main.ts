import {
  createLogger,
  createRedis,
  createRegistry,
  loadConfig,
  monitorRedis,
  runMain,
  startHealthServer,
  stopOnSignals,
  withDeadline,
  workerMetrics,
  keyspaceOf,
  ShardLayouts,
  layoutOptionsOf,
  type Logger,
  DEAD_LETTER_QUEUE,
  EVENTS_QUEUE,
} from '@replyflow/shared';
import { DeadLetters } from './engine/dead-letter.js';
import { createHttpAgent } from './engine/http-post.js';
import { loadWorkflows } from './engine/load-workflows.js';
import { queueStatsCollector, queueStatsGroups } from './engine/queue-stats.js';
import { RateLimiter, sharedRateLimit } from './engine/rate-limit.js';
import { olderShardsCheck, rememberedInOlderShards, watchDrain } from './engine/layout-drain.js';
import { startShard } from './engine/shard.js';
import { ShardSet } from './engine/shard-set.js';

/** Taking events without a workflow would lose them; they wait until one is configured. */
function targetsExist(workflows: readonly unknown[], logger: Logger): boolean {
  if (workflows.length > 0) return true;
  logger.warn('no workflow configured (set FORWARD_URL, REPLY_RULES or WORKFLOWS): events stay queued until one is');
  return false;
}

runMain(async () => {
  const config = loadConfig('worker');
  const logger = createLogger('worker', config.logLevel);
  const agent = createHttpAgent();
  const workflows = await loadWorkflows(config, agent);
  const names = workflows.map((w) => w.name);
  const keyspace = keyspaceOf(config);
  const clustered = !!config.redisClusterNodes?.length;
  const queueLabels = config.workerShards.flatMap((shard) => [EVENTS_QUEUE, ...names].map((name) => keyspace.queueLabel(name, shard)));
  const registry = createRegistry('worker');
  const limits = workflows.flatMap((w) => (w.rateLimit ? [w.rateLimit.name] : []));
  const metrics = workerMetrics(registry, names, [...queueLabels, DEAD_LETTER_QUEUE], limits);

  // BullMQ's connection writes each command at once: ioredis copies every
  // script defined on a connection (BullMQ defines 54) into each auto-pipeline
  // batch, and BullMQ sends about one command per event, so a batch per event
  // cost 15 µs of copying (worker profile) for little batching.
  const redis = createRedis(config, 'worker', { autoPipelining: false });
  // The engine's own commands (lanes, steps, rate limits) on a connection of
  // their own, which writes at once too: its turn and finish scripts are
  // batched already (redis-script.ts), and an auto-pipeline would hold each
  // batch back until the previous one is answered (+5% events/s without it).
  const engineRedis = createRedis(config, 'worker', { autoPipelining: false });
  const redisHealth = monitorRedis(redis, { logger, redisUp: metrics.redisUp, whenDown: 'reconnecting', refuseEviction: config.requireSafeRedis });
  const deadLetters = new DeadLetters(redis, keyspace.global);
  const layouts = await ShardLayouts.open(redis, { ...layoutOptionsOf(config), logger });
  let shardSet: ShardSet | undefined;
  const collectQueueStats = queueStatsCollector(redis, () => queueStatsGroups(shardSet?.served() ?? [], keyspace.global, names, clustered), metrics);
  const health = await startHealthServer({
    port: config.metricsPort,
    host: config.host,
    registry,
    isReady: redisHealth.isUp,
    beforeScrape: () => withDeadline(collectQueueStats(), 500),
  });

  const workerOptions = {
    connection: redis,
    concurrency: config.workerConcurrency,
    lockDuration: config.jobLockMs,
    // A job is taken over at the first stall check after its lock has expired
    // and after one that saw it active: within JOB_LOCK_MS and two intervals.
    stalledInterval: Math.ceil(config.jobLockMs / 2),
    // A job whose worker died is retried on another; several deaths in a row
    // still should not fail an event that was never attempted.
    maxStalledCount: 5,
  };
  // Rate limits are global: one limiter per workflow, whatever the shard.
  const rateLimits = new Map(
    workflows.map((workflow) => {
      const limit = workflow.rateLimit;
      if (!limit) return [workflow.name, undefined] as const;
      const limiter = new RateLimiter(engineRedis, `${keyspace.global}:ratelimit:${limit.name}`, limit.perSecond);
      return [workflow.name, sharedRateLimit(limiter, () => metrics.rateLimited.inc({ limit: limit.name }))] as const;
    }),
  );
  if (targetsExist(workflows, logger)) {
    const start = (prefix: string) =>
      startShard({
        redis: engineRedis,
        prefix,
        config,
        workflows,
        rateLimits,
        deadLetters,
        metrics,
        logger,
        workerOptions,
        olderShardsBusy: olderShardsCheck(engineRedis, layouts, workflows, prefix),
        rememberedInOlderShards: rememberedInOlderShards(engineRedis, layouts),
      });
    shardSet = new ShardSet({ layouts, configuredShards: config.queueShards, pinnedShards: config.workerShards, start, logger });
    await shardSet.sync();
  }
  const drainWatch = watchDrain(engineRedis, layouts, names, clustered, logger);
  logger.info(
    { metricsPort: health.port, concurrency: config.workerConcurrency, workflows: names, shards: config.workerShards },
    'worker started',
  );

  stopOnSignals(logger, config.shutdownTimeoutMs, async () => {
    layouts.stop();
    drainWatch.stop();
    await shardSet?.close();
    health.server.close();
    redisHealth.stop();
    await deadLetters.close();
    await agent.close();
    await Promise.all([redis, engineRedis].map((client) => client.quit().catch(() => client.disconnect())));
  });
});

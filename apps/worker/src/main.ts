import {
  createLogger,
  createRedis,
  createRegistry,
  loadConfig,
  runMain,
  startHealthServer,
  stopOnSignals,
  monitorRedis,
  withDeadline,
  workerMetrics,
  DEAD_LETTER_QUEUE,
  EVENTS_QUEUE,
} from '@replyflow/shared';
import { Worker } from 'bullmq';
import { DeadLetters } from './engine/dead-letter.js';
import { createEventProcessor, type EventJob } from './engine/event-processor.js';
import { createHttpAgent } from './engine/http-post.js';
import { queueStatsCollector } from './engine/queue-stats.js';
import { forwardWorkflow } from './workflows/forward.js';

runMain(async () => {
  const config = loadConfig('worker');
  const logger = createLogger('worker', config.logLevel);
  const registry = createRegistry('worker');
  const queues = [EVENTS_QUEUE, DEAD_LETTER_QUEUE];
  const metrics = workerMetrics(registry, ['forward'], queues);

  const redis = createRedis(config, 'worker');
  // Workers only warn: REQUIRE_SAFE_REDIS guards what the ingest acknowledges.
  const redisHealth = monitorRedis(redis, {
    logger,
    redisUp: metrics.redisUp,
    whenDown: 'reconnecting',
    refuseEviction: false,
  });

  const agent = createHttpAgent(config.workerConcurrency);
  const deadLetters = new DeadLetters(redis, config.queuePrefix);
  const collectQueueStats = queueStatsCollector(redis, config.queuePrefix, queues, metrics);
  const health = await startHealthServer({
    port: config.metricsPort,
    host: config.host,
    registry,
    isReady: redisHealth.isUp,
    beforeScrape: () => withDeadline(collectQueueStats(), 500),
  });

  let worker: Worker | undefined;
  if (config.forwardUrl) {
    const workflow = forwardWorkflow({
      url: config.forwardUrl,
      secret: config.forwardSecret,
      timeoutMs: config.forwardTimeoutMs,
      agent,
    });
    const processor = createEventProcessor({
      redis,
      prefix: config.queuePrefix,
      dedupeTtlSeconds: config.dedupeTtlSeconds,
      maxAttempts: config.maxAttempts,
      backoffBaseMs: config.backoffBaseMs,
      workflow,
      deadLetters,
      metrics,
      logger,
    });
    worker = new Worker(EVENTS_QUEUE, (job: EventJob, token?: string) => processor.process(job, token), {
      connection: redis,
      prefix: config.queuePrefix,
      concurrency: config.workerConcurrency,
      // A job whose worker died is retried on another; several deaths in a row
      // still should not fail an event that was never attempted.
      maxStalledCount: 5,
    });
    worker.on('error', (error) => logger.warn({ err: error.message }, 'worker error'));
    worker.on('failed', (job, error) => {
      if (job) void processor.onFailed(job, error).catch((e: Error) => logger.error({ eventId: job.id, err: e.message }, 'could not dead-letter a failed job'));
    });
  } else {
    // Taking events without a workflow would lose them; they wait until one is configured.
    logger.warn('no workflow configured (set FORWARD_URL): events stay queued until one is');
  }
  logger.info(
    { metricsPort: health.port, concurrency: config.workerConcurrency, forwardUrl: config.forwardUrl ? new URL(config.forwardUrl).origin : null },
    'worker started',
  );

  stopOnSignals(logger, config.shutdownTimeoutMs, async () => {
    await worker?.close();
    health.server.close();
    redisHealth.stop();
    await deadLetters.close();
    await agent.close();
    await redis.quit().catch(() => redis.disconnect());
  });
});

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
  DEAD_LETTER_QUEUE,
  EVENTS_QUEUE,
  type EventJobData,
  type WorkflowJobData,
} from '@replyflow/shared';
import { Queue, Worker } from 'bullmq';
import { DeadLetters } from './engine/dead-letter.js';
import { createDispatcher } from './engine/dispatcher.js';
import { createHttpAgent } from './engine/http-post.js';
import { Lanes } from './engine/lanes.js';
import { loadWorkflows } from './engine/load-workflows.js';
import { queueStatsCollector } from './engine/queue-stats.js';
import { RateLimiter, waitForSlot } from './engine/rate-limit.js';
import { createWorkflowRunner, type WorkflowJob } from './engine/workflow-runner.js';

runMain(async () => {
  const config = loadConfig('worker');
  const logger = createLogger('worker', config.logLevel);
  const agent = createHttpAgent(config.workerConcurrency);
  const workflows = await loadWorkflows(config, agent);
  const names = workflows.map((w) => w.name);
  const queueNames = [EVENTS_QUEUE, ...names, DEAD_LETTER_QUEUE];
  const registry = createRegistry('worker');
  const metrics = workerMetrics(registry, names, queueNames, workflows.flatMap((w) => (w.rateLimit ? [w.rateLimit.name] : [])));

  const redis = createRedis(config, 'worker');
  // Workers only warn: REQUIRE_SAFE_REDIS guards what the ingest acknowledges.
  const redisHealth = monitorRedis(redis, { logger, redisUp: metrics.redisUp, whenDown: 'reconnecting', refuseEviction: false });
  const deadLetters = new DeadLetters(redis, config.queuePrefix);
  const lanes = new Lanes(redis, config.queuePrefix, logger);
  const collectQueueStats = queueStatsCollector(redis, config.queuePrefix, queueNames, metrics);
  const health = await startHealthServer({
    port: config.metricsPort,
    host: config.host,
    registry,
    isReady: redisHealth.isUp,
    beforeScrape: () => withDeadline(collectQueueStats(), 500),
  });

  const workerOptions = {
    connection: redis,
    prefix: config.queuePrefix,
    concurrency: config.workerConcurrency,
    lockDuration: config.jobLockMs,
    stalledInterval: config.jobLockMs,
    // A job whose worker died is retried on another; several deaths in a row
    // still should not fail an event that was never attempted.
    maxStalledCount: 5,
  };
  const queues: Queue[] = [];
  const workers: Worker[] = [];
  const targets = workflows.map((workflow) => {
    const queue = new Queue<WorkflowJobData>(workflow.name, { connection: redis, prefix: config.queuePrefix });
    queues.push(queue);
    const limiter = workflow.rateLimit
      ? new RateLimiter(redis, `${config.queuePrefix}:ratelimit:${workflow.rateLimit.name}`, workflow.rateLimit.perSecond)
      : undefined;
    const runner = createWorkflowRunner(workflow, queue, {
      redis,
      prefix: config.queuePrefix,
      dedupeTtlSeconds: config.dedupeTtlSeconds,
      maxAttempts: config.maxAttempts,
      backoffBaseMs: config.backoffBaseMs,
      lanes,
      deadLetters,
      metrics,
      logger,
      rateLimit: limiter && (() => waitForSlot(limiter, () => metrics.rateLimited.inc({ limit: workflow.rateLimit!.name }))),
    });
    const worker = new Worker(workflow.name, (job: WorkflowJob, token?: string) => runner.process(job, token), workerOptions);
    worker.on('failed', (job, error) => {
      if (job) void runner.onFailed(job, error).catch((e: Error) => logger.error({ jobId: job.id, err: e.message }, 'could not dead-letter a failed job'));
    });
    workers.push(worker);
    return { workflow, queue };
  });

  if (targets.length > 0) {
    const eventsQueue = new Queue<EventJobData>(EVENTS_QUEUE, { connection: redis, prefix: config.queuePrefix });
    queues.push(eventsQueue);
    const dispatch = createDispatcher(targets, eventsQueue, {
      redis,
      prefix: config.queuePrefix,
      dedupeTtlSeconds: config.dedupeTtlSeconds,
      backoffBaseMs: config.backoffBaseMs,
      lanes,
      logger,
    });
    workers.push(new Worker(EVENTS_QUEUE, dispatch, workerOptions));
  } else {
    // Taking events without a workflow would lose them; they wait until one is configured.
    logger.warn('no workflow configured (set FORWARD_URL, REPLY_RULES or WORKFLOWS): events stay queued until one is');
  }
  for (const worker of workers) worker.on('error', (error) => logger.warn({ err: error.message }, 'worker error'));
  for (const queue of queues) queue.on('error', () => {});
  logger.info({ metricsPort: health.port, concurrency: config.workerConcurrency, workflows: names }, 'worker started');

  stopOnSignals(logger, config.shutdownTimeoutMs, async () => {
    await Promise.all(workers.map((worker) => worker.close()));
    health.server.close();
    redisHealth.stop();
    await Promise.all(queues.map((queue) => queue.close()));
    await deadLetters.close();
    await agent.close();
    await redis.quit().catch(() => redis.disconnect());
  });
});

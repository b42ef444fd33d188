import { EVENTS_QUEUE, type Config, type EventJobData, type Logger, type RedisClient, type WorkflowJobData, type workerMetrics } from '@replyflow/shared';
import type { Workflow, WorkflowEvent } from '@replyflow/workflow';
import { Queue, Worker, type WorkerOptions } from 'bullmq';
import type { DeadLetters } from './dead-letter.js';
import type { SharedRateLimit } from './rate-limit.js';
import { installCompletion } from './completion.js';
import { createDispatcher } from './dispatcher.js';
import { Lanes } from './lanes.js';
import { createWorkflowRunner, type WorkflowJob } from './workflow-runner.js';

export interface ShardDeps {
  /** The engine's connection; BullMQ's is workerOptions.connection. */
  redis: RedisClient;
  /** The shard's key prefix (keyspace.ts). */
  prefix: string;
  config: Pick<Config, 'queuePrefix' | 'dedupeTtlSeconds' | 'maxAttempts' | 'backoffBaseMs'>;
  /** After a change of QUEUE_SHARDS (layout-drain.ts). */
  olderShardsBusy: (event: WorkflowEvent) => Promise<boolean>;
  rememberedInOlderShards: (phone: string) => Promise<boolean>;
  workflows: readonly Workflow[];
  /** Each workflow's shared rate limit, by workflow name. */
  rateLimits: ReadonlyMap<string, SharedRateLimit | undefined>;
  deadLetters: DeadLetters;
  metrics: ReturnType<typeof workerMetrics>;
  logger: Logger;
  workerOptions: Omit<WorkerOptions, 'prefix' | 'connection'> & { connection: RedisClient };
}

/** The BullMQ workers of one shard: the dispatcher on `events`, and a runner per workflow. */
export function startShard(deps: ShardDeps): { workers: Worker[]; queues: Queue[] } {
  const { redis, prefix, config, logger } = deps;
  const options = { ...deps.workerOptions, prefix };
  installCompletion(options.connection);
  const lanes = new Lanes(redis, prefix, logger);
  const queues: Queue[] = [];
  const workers: Worker[] = [];
  const targets = deps.workflows.map((workflow) => {
    const queue = new Queue<WorkflowJobData>(workflow.name, { connection: options.connection, prefix });
    queues.push(queue);
    const runner = createWorkflowRunner(workflow, queue, {
      redis,
      prefix,
      queuePrefix: config.queuePrefix,
      dedupeTtlSeconds: config.dedupeTtlSeconds,
      maxAttempts: config.maxAttempts,
      backoffBaseMs: config.backoffBaseMs,
      lanes,
      deadLetters: deps.deadLetters,
      metrics: deps.metrics,
      logger,
      rateLimit: deps.rateLimits.get(workflow.name),
    });
    const worker = new Worker(workflow.name, (job: WorkflowJob, token?: string) => runner.process(job, token), options);
    worker.on('failed', (job, error) => {
      if (!job) return;
      runner.onFailed(job, error).catch((e: Error) => logger.error({ jobId: job.id, err: e.message }, 'could not dead-letter a failed job'));
    });
    workers.push(worker);
    return { workflow, queue, runAttempt: runner.runAttempt };
  });
  const eventsQueue = new Queue<EventJobData>(EVENTS_QUEUE, { connection: options.connection, prefix });
  queues.push(eventsQueue);
  const dispatch = createDispatcher(targets, eventsQueue, {
    redis,
    prefix,
    queuePrefix: config.queuePrefix,
    olderShardsBusy: deps.olderShardsBusy,
    rememberedInOlderShards: deps.rememberedInOlderShards,
    dedupeTtlSeconds: config.dedupeTtlSeconds,
    backoffBaseMs: config.backoffBaseMs,
    lanes,
    deadLetters: deps.deadLetters,
    metrics: deps.metrics,
    logger,
  });
  // An event job BullMQ failed for stalling too often would head its phone's
  // lane for good, in no dead-letter queue: a dispatch is redone whole
  // whenever its worker dies, so it is never given up.
  workers.push(new Worker(EVENTS_QUEUE, dispatch, { ...options, maxStalledCount: Number.MAX_SAFE_INTEGER }));
  for (const worker of workers) worker.on('error', (error) => logger.warn({ err: error.message }, 'worker error'));
  for (const queue of queues) queue.on('error', () => {});
  return { workers, queues };
}

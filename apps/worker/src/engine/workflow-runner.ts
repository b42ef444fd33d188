import {
  debounceKey,
  doneKey,
  maskPhone,
  parseNotifyerPayload,
  PermanentError,
  RetryAfterError,
  type AttemptRecord,
  type Logger,
  type RedisClient,
  type WorkflowJobData,
  type workerMetrics,
} from '@replyflow/shared';
import type { Workflow, WorkflowEvent } from '@replyflow/workflow';
import { DelayedError, type Job, type Queue } from 'bullmq';
import { backoffDelayMs } from './backoff.js';
import type { DeadLetters } from './dead-letter.js';
import type { Lanes } from './lanes.js';
import { createStepTools, SleepSignal } from './step-tools.js';

export interface RunnerDeps {
  redis: RedisClient;
  /** The shard's key prefix. */
  prefix: string;
  /** QUEUE_PREFIX: keys that follow a phone rather than a shard. */
  queuePrefix: string;
  dedupeTtlSeconds: number;
  maxAttempts: number;
  backoffBaseMs: number;
  lanes: Lanes;
  deadLetters: DeadLetters;
  metrics: ReturnType<typeof workerMetrics>;
  logger: Logger;
  /** Waits for the workflow's shared rate limit, if it has one. */
  rateLimit?: () => Promise<void>;
}

export type WorkflowJob = Job<WorkflowJobData>;

export function attemptRecord(error: unknown): AttemptRecord {
  const status = (error as { status?: number }).status ?? null;
  const kind =
    error instanceof PermanentError
      ? 'permanent'
      : error instanceof RetryAfterError
        ? 'rate_limited'
        : ((error as { kind?: string }).kind ?? 'error');
  return { at: new Date().toISOString(), status, error: (error as Error).message ?? String(error), kind };
}

export const stepsKey = (prefix: string, jobId: string) => `${prefix}:steps:${jobId}`;

/**
 * Runs one workflow's jobs: waits for the job's turn in its lane, runs the
 * workflow with durable steps, and on failure retries with backoff (the same
 * job moved back to `delayed`, its history in its data) or dead-letters it.
 * Sleeps and retries keep the lane; finishing (done or dead-lettered) leaves it.
 */
export function createWorkflowRunner(workflow: Workflow, queue: Queue<WorkflowJobData>, deps: RunnerDeps) {
  const { redis, metrics, lanes } = deps;
  const name = workflow.name;
  const maxAttempts = workflow.retries ?? deps.maxAttempts;

  // Steps are kept for a dead-lettered event, so a replay resumes after its last finished step.
  const finish = (job: WorkflowJob, token: string | undefined, keepSteps: boolean) =>
    lanes.finish(job, token, queue, job.data.lane, {
      doneKey: doneKey(deps.prefix, job.data.eventId),
      field: name,
      ttlSeconds: deps.dedupeTtlSeconds,
      stepsKey: stepsKey(deps.prefix, job.id!),
      keepSteps,
    });

  const deadLetter = async (job: WorkflowJob, token: string | undefined, phone: string, history: AttemptRecord[]) => {
    await deps.deadLetters.add({ ...job.data, phone, history });
    await finish(job, token, true);
    metrics.jobs.inc({ workflow: name, outcome: 'dead_lettered' });
  };

  const process = async (job: WorkflowJob, token?: string): Promise<void> => {
    const parsed = parseNotifyerPayload(job.data.payload);
    if (!parsed.ok) throw new Error(`job ${job.id} holds an invalid payload`);
    // Asked for beside the turn check: one round trip for both when the job runs at once.
    const stored = redis.hgetall(stepsKey(deps.prefix, job.id!));
    stored.catch(() => {}); // a parked job never reads it
    await lanes.takeTurn(job, token, queue, job.data.lane);
    const event: WorkflowEvent = { ...parsed.event, receivedAt: job.data.receivedAt, firstContact: job.data.firstContact, traceId: job.data.traceId };
    const log = deps.logger.child({ eventId: event.id, workflow: name });
    const history = job.data.history ?? [];
    const attempt = history.length + 1;
    const timer = metrics.jobDuration.startTimer({ workflow: name });
    try {
      const step = await createStepTools({ redis, stepsKey: stepsKey(deps.prefix, job.id!), beforeRun: deps.rateLimit, stored });
      const debounce = workflow.debounce?.(event);
      if (debounce) {
        await step.sleepUntil('debounce', event.receivedAt + debounce.ms);
        if ((await redis.get(debounceKey(deps.queuePrefix, name, debounce.key))) !== job.id) {
          log.info('a later event of the same key superseded this one (debounce)');
          await finish(job, token, false);
          return;
        }
      }
      await workflow.run(event, step);
      timer();
      await finish(job, token, false);
      metrics.jobs.inc({ workflow: name, outcome: 'completed' });
      metrics.eventLag.observe({ workflow: name }, (Date.now() - event.receivedAt) / 1000);
      log.info({ attempt, phone: maskPhone(event.phone) }, 'workflow completed');
    } catch (error) {
      if (error instanceof SleepSignal) {
        await job.moveToDelayed(error.wakeAt, token);
        throw new DelayedError();
      }
      if (error instanceof DelayedError) throw error;
      timer();
      const record = attemptRecord(error);
      const nextHistory = [...history, record];
      if (error instanceof PermanentError || attempt >= maxAttempts) {
        await deadLetter(job, token, event.phone, nextHistory);
        log.warn({ attempt, error: record.error, kind: record.kind }, 'workflow failed, moved to the dead-letter queue');
        return;
      }
      const delayMs =
        error instanceof RetryAfterError && error.retryAfterMs > 0 ? error.retryAfterMs : backoffDelayMs(attempt, deps.backoffBaseMs);
      await job.updateData({ ...job.data, history: nextHistory });
      await job.moveToDelayed(Date.now() + delayMs, token);
      metrics.jobs.inc({ workflow: name, outcome: 'retried' });
      log.warn({ attempt, delayMs, error: record.error, kind: record.kind }, 'workflow failed, retrying');
      throw new DelayedError();
    }
  };

  /**
   * BullMQ fails a job itself when its workers keep dying on it (stalled too
   * often): that is an exhausted event too, so it goes to the dead-letter queue.
   */
  const onFailed = async (job: WorkflowJob, error: Error): Promise<void> => {
    const parsed = parseNotifyerPayload(job.data.payload);
    const phone = parsed.ok ? parsed.event.phone : '';
    const record = { ...attemptRecord(error), kind: 'stalled' };
    await deadLetter(job, undefined, phone, [...(job.data.history ?? []), record]);
    await job.remove().catch(() => {});
    deps.logger.warn({ eventId: job.data.eventId, workflow: name, err: error.message }, 'job failed outside its workflow, dead-lettered');
  };

  return { process, onFailed };
}

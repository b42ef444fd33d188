import {
  doneKey,
  maskPhone,
  parseNotifyerPayload,
  PermanentError,
  RetryAfterError,
  type AttemptRecord,
  type EventJobData,
  type Logger,
  type NotifyerEvent,
  type Redis,
  type workerMetrics,
} from '@replyflow/shared';
import { DelayedError, type Job } from 'bullmq';
import { backoffDelayMs } from './backoff.js';
import type { DeadLetters } from './dead-letter.js';
import type { Workflow } from './workflow.js';

export interface ProcessorDeps {
  redis: Redis;
  prefix: string;
  dedupeTtlSeconds: number;
  maxAttempts: number;
  backoffBaseMs: number;
  workflow: Workflow;
  deadLetters: DeadLetters;
  metrics: ReturnType<typeof workerMetrics>;
  logger: Logger;
}

export type EventJob = Job<EventJobData & { history?: AttemptRecord[] }>;

function attemptRecord(error: unknown): AttemptRecord {
  const status = (error as { status?: number }).status ?? null;
  const kind =
    error instanceof PermanentError ? 'permanent' : error instanceof RetryAfterError ? 'rate_limited' : ((error as { kind?: string }).kind ?? 'error');
  return { at: new Date().toISOString(), status, error: (error as Error).message ?? String(error), kind };
}

/**
 * Runs one attempt of a workflow on one event. A retry is the same job moved
 * back to `delayed` (not a BullMQ failure), so the attempt count and history
 * live in the job's data and MAX_ATTEMPTS is the worker's, applying to events
 * already queued.
 */
export function createEventProcessor(deps: ProcessorDeps) {
  const { redis, metrics, workflow } = deps;
  const markDone = (eventId: string) => redis.set(doneKey(deps.prefix, eventId), '1', 'EX', deps.dedupeTtlSeconds);
  const deadLetter = async (job: EventJob, event: NotifyerEvent, history: AttemptRecord[]) => {
    await deps.deadLetters.add({ ...job.data, eventId: event.id, workflow: workflow.name, phone: event.phone, history });
    await markDone(event.id);
    metrics.jobs.inc({ workflow: workflow.name, outcome: 'dead_lettered' });
  };

  /**
   * BullMQ fails a job itself when its workers keep dying on it (stalled too
   * often): that is an exhausted event too, so it goes to the dead-letter queue.
   */
  const onFailed = async (job: EventJob, error: Error): Promise<void> => {
    const parsed = parseNotifyerPayload(job.data.payload);
    if (!parsed.ok) return;
    await deadLetter(job, parsed.event, [...(job.data.history ?? []), attemptRecord(Object.assign(error, { kind: 'stalled' }))]);
    await job.remove().catch(() => {});
    deps.logger.warn({ eventId: parsed.event.id, workflow: workflow.name, err: error.message }, 'job failed outside its workflow, moved to the dead-letter queue');
  };

  const process = async (job: EventJob, token?: string): Promise<void> => {
    const parsed = parseNotifyerPayload(job.data.payload);
    if (!parsed.ok) {
      // The ingest validated it; only a hand-made job can get here.
      deps.logger.error({ jobId: job.id, issues: parsed.issues }, 'job holds an invalid payload, dropping it');
      return;
    }
    const { event } = parsed;
    const log = deps.logger.child({ eventId: event.id, workflow: workflow.name });
    // Two deliveries racing at the ingest can add the same job twice if the first
    // finished in between; the done marker makes the second a no-op.
    if ((await redis.exists(doneKey(deps.prefix, event.id))) > 0) {
      log.info('event already finished, skipping');
      return;
    }
    const history = job.data.history ?? [];
    const attempt = history.length + 1;
    const timer = metrics.jobDuration.startTimer({ workflow: workflow.name });
    try {
      await workflow.run(event, { receivedAt: job.data.receivedAt, traceId: job.data.traceId, attempt });
      timer();
      await markDone(event.id);
      metrics.jobs.inc({ workflow: workflow.name, outcome: 'completed' });
      metrics.eventLag.observe({ workflow: workflow.name }, (Date.now() - job.data.receivedAt) / 1000);
      log.info({ attempt, phone: maskPhone(event.phone) }, 'workflow completed');
      return;
    } catch (error) {
      timer();
      const record = attemptRecord(error);
      const nextHistory = [...history, record];
      if (error instanceof PermanentError || attempt >= deps.maxAttempts) {
        await deadLetter(job, event, nextHistory);
        log.warn({ attempt, error: record.error, kind: record.kind }, 'workflow failed, moved to the dead-letter queue');
        return;
      }
      const delayMs =
        error instanceof RetryAfterError && error.retryAfterMs > 0 ? error.retryAfterMs : backoffDelayMs(attempt, deps.backoffBaseMs);
      await job.updateData({ ...job.data, history: nextHistory });
      await job.moveToDelayed(Date.now() + delayMs, token);
      metrics.jobs.inc({ workflow: workflow.name, outcome: 'retried' });
      log.warn({ attempt, delayMs, error: record.error, kind: record.kind }, 'workflow failed, retrying');
      throw new DelayedError();
    }
  };
  return { process, onFailed };
}

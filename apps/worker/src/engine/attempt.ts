import { maskPhone, PermanentError, RetryAfterError, type AttemptRecord, type Logger, type RedisClient, type workerMetrics } from '@replyflow/shared';
import type { Workflow, WorkflowEvent } from '@replyflow/workflow';
import { DelayedError } from 'bullmq';
import { backoffDelayMs } from './backoff.js';
import { isSuperseded } from './debounce.js';
import type { SharedRateLimit } from './rate-limit.js';
import { createStepTools, SleepSignal, type DurableSteps } from './step-tools.js';

export interface AttemptDeps {
  redis: RedisClient;
  /** The shard's key prefix. */
  prefix: string;
  /** QUEUE_PREFIX: for keys that follow a workflow's key rather than a shard. */
  queuePrefix: string;
  maxAttempts: number;
  backoffBaseMs: number;
  metrics: ReturnType<typeof workerMetrics>;
  logger: Logger;
  /** The workflow's shared rate limit, if it has one. */
  rateLimit?: SharedRateLimit;
}

/**
 * What becomes of an attempt, carried out by whoever ran it: the workflow
 * runner moves its own job, the dispatcher (a first attempt run inline) hands
 * what still waits to a new workflow job. Each resolves once it is stored.
 */
export interface Settlement {
  /**
   * Completed, or superseded by a later event (debounce): record it and leave
   * the lane, which deletes the steps, the last result never stored.
   * `stepsStored`: whether the steps hash holds anything yet.
   */
  finished(stepsStored: boolean): Promise<void>;
  /** Store the entry, then leave the lane keeping the steps, so a replay resumes after the last finished one. */
  deadLettered(history: AttemptRecord[]): Promise<void>;
  /** A durable sleep: come back at `wakeAt`, keeping the lane. */
  sleeping(wakeAt: number): Promise<void>;
  /** A failed attempt: come back after `delayMs` with `history`, keeping the lane. */
  retrying(history: AttemptRecord[], delayMs: number): Promise<void>;
}

/** `waiting`: the work goes on later (sleep, retry); `settled`: finished or dead-lettered. */
export type AttemptOutcome = 'settled' | 'waiting';

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
 * One attempt of a workflow on an event, with durable steps: runs it from the
 * top (finished steps return their stored result), classifies a failure
 * (docs/design.md, section 4), counts and logs the outcome, and leaves the
 * rest to the caller's settlement.
 */
export function createAttempts(workflow: Workflow, deps: AttemptDeps) {
  const { redis, metrics } = deps;
  const name = workflow.name;
  const maxAttempts = workflow.retries ?? deps.maxAttempts;
  const { rateLimit } = deps;
  // Run inline, an attempt holds its event's dispatch and a dispatch slot: it
  // takes only a slot free now, and otherwise goes on in a workflow job at
  // once (a sleep that ends now, not an attempt), which waits for one.
  const takeSlotOrHandOff = rateLimit && (async () => {
    if (!(await rateLimit.takeIfFree())) throw new SleepSignal(Date.now());
  });
  // Made once: prom-client and pino take them as they are, and this runs for every event.
  const labels = { workflow: name };
  const completed = { workflow: name, outcome: 'completed' };
  const retried = { workflow: name, outcome: 'retried' };
  const deadLettered = { workflow: name, outcome: 'dead_lettered' };
  // The attempt's own fields on each of its log lines, rather than a child logger made for every attempt.
  const logFields = (event: WorkflowEvent, fields: Record<string, unknown>) => ({ eventId: event.id, workflow: name, ...fields });

  /** `inline`: run by the dispatcher (see takeSlotOrHandOff), not by the workflow's own job. */
  return async (
    event: WorkflowEvent,
    jobId: string,
    history: AttemptRecord[],
    stored: Promise<Record<string, string>> | undefined,
    settle: Settlement,
    inline = false,
  ): Promise<AttemptOutcome> => {
    const { logger } = deps;
    const attempt = history.length + 1;
    const startedAt = performance.now();
    const observeDuration = () => metrics.jobDuration.observe(labels, (performance.now() - startedAt) / 1000);
    let step: DurableSteps | undefined;
    let superseded = false;
    try {
      const beforeRun = inline ? takeSlotOrHandOff : rateLimit?.wait;
      step = await createStepTools({ redis, stepsKey: stepsKey(deps.prefix, jobId), beforeRun, stored });
      const debounce = workflow.debounce?.(event);
      if (debounce) {
        await step.engineSleepUntil('debounce', event.receivedAt + debounce.ms);
        // Decided once, when the window ends, and kept with the steps: a later
        // event arriving after the window must not cancel, on a resumption after
        // a delay, a retry or a replay, a reply already under way.
        superseded = await step.engine('debounce', () => isSuperseded(redis, deps.queuePrefix, name, debounce.key, jobId));
      }
      if (!superseded) await workflow.run(event, step);
    } catch (error) {
      // Whatever goes on later must find every finished step stored.
      await step?.flush();
      if (error instanceof SleepSignal) {
        await settle.sleeping(error.wakeAt);
        return 'waiting';
      }
      if (error instanceof DelayedError) throw error;
      observeDuration();
      const record = attemptRecord(error);
      const nextHistory = [...history, record];
      if (error instanceof PermanentError || attempt >= maxAttempts) {
        await settle.deadLettered(nextHistory);
        metrics.jobs.inc(deadLettered);
        logger.warn(logFields(event, { attempt, error: record.error, kind: record.kind }), 'workflow failed, moved to the dead-letter queue');
        return 'settled';
      }
      const delayMs =
        error instanceof RetryAfterError && error.retryAfterMs > 0 ? error.retryAfterMs : backoffDelayMs(attempt, deps.backoffBaseMs);
      await settle.retrying(nextHistory, delayMs);
      metrics.jobs.inc(retried);
      logger.warn(logFields(event, { attempt, delayMs, error: record.error, kind: record.kind }), 'workflow failed, retrying');
      return 'waiting';
    }
    // Outside the try: a failure to record the outcome (a lost lock) is no failure of the workflow.
    observeDuration();
    await settle.finished(step.stored);
    // A superseded attempt completes too, its work left to the later event: every attempt counts once.
    metrics.jobs.inc(completed);
    metrics.eventLag.observe(labels, (Date.now() - event.receivedAt) / 1000);
    if (superseded) logger.info(logFields(event, {}), 'a later event of the same key superseded this one (debounce)');
    else logger.info(logFields(event, { attempt, phone: maskPhone(event.phone) }), 'workflow completed');
    return 'settled';
  };
}

export type RunAttempt = ReturnType<typeof createAttempts>;

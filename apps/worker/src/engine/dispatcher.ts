import {
  debounceKey,
  doneKey,
  phoneMemoryKey,
  enqueueWorkflowJob,
  laneKey,
  parseNotifyerPayload,
  DISPATCHED_FIELD,
  EVENTS_QUEUE,
  type EventJobData,
  type Logger,
  type RedisClient,
  type WorkflowJobData,
} from '@replyflow/shared';
import type { Workflow, WorkflowEvent } from '@replyflow/workflow';
import { DelayedError, type Job, type Queue } from 'bullmq';
import { backoffDelayMs } from './backoff.js';
import type { Lanes } from './lanes.js';
import { stepsKey } from './workflow-runner.js';

const PHONE_MEMORY_SECONDS = 365 * 24 * 3600;
const DEBOUNCE_KEY_MARGIN_MS = 60_000;
/** How often an event re-checks the phone's old shards after a change of QUEUE_SHARDS. */
const OLDER_SHARDS_RECHECK_MS = 250;

export interface DispatcherDeps {
  redis: RedisClient;
  /** The shard's key prefix. */
  prefix: string;
  /** QUEUE_PREFIX: keys that follow a phone rather than a shard. */
  queuePrefix: string;
  /** True while the phone still has events in the shards of a retired QUEUE_SHARDS (layouts.ts). */
  olderShardsBusy: (event: WorkflowEvent) => Promise<boolean>;
  dedupeTtlSeconds: number;
  backoffBaseMs: number;
  lanes: Lanes;
  logger: Logger;
}

export interface DispatchTarget {
  workflow: Workflow;
  queue: Queue<WorkflowJobData>;
}

/**
 * Turns each accepted event, in its phone's acceptance order, into one job per
 * matching workflow. Every step is idempotent, so a dispatch interrupted by a
 * crash is redone whole: lane entries use NX, jobs have fixed ids, and the done
 * record says which workflows already finished with the event.
 */
export function createDispatcher(targets: readonly DispatchTarget[], eventsQueue: Queue<EventJobData>, deps: DispatcherDeps) {
  const { redis, lanes, prefix } = deps;

  /** The first incoming event from a phone; the SET keeps the event id, so a redone dispatch agrees. */
  const isFirstContact = async (phone: string, eventId: string): Promise<boolean> => {
    const previous = await redis.call('SET', phoneMemoryKey(deps.queuePrefix, phone), eventId, 'NX', 'GET', 'EX', PHONE_MEMORY_SECONDS);
    return previous === null || previous === eventId;
  };

  const dispatch = async (job: Job<EventJobData>, event: WorkflowEvent, finished: ReadonlySet<string>) => {
    for (const { workflow, queue } of targets) {
      if (!(workflow.match?.(event) ?? true)) continue;
      if (finished.has(workflow.name)) continue;
      const jobData: WorkflowJobData = {
        eventId: event.id,
        workflow: workflow.name,
        receivedAt: job.data.receivedAt,
        traceId: job.data.traceId,
        payload: job.data.payload,
        seq: job.data.seq,
        lane: laneKey(prefix, workflow.name, workflow.key?.(event) ?? event.phone),
        firstContact: event.firstContact,
      };
      const debounce = workflow.debounce?.(event);
      if (debounce) {
        const latest = `${workflow.name}.${event.id}`;
        await redis.set(debounceKey(deps.queuePrefix, workflow.name, debounce.key), latest, 'PX', debounce.ms + DEBOUNCE_KEY_MARGIN_MS);
      }
      await enqueueWorkflowJob(redis, queue, prefix, jobData);
    }
  };

  return async (job: Job<EventJobData>, token?: string): Promise<void> => {
    const lane = laneKey(prefix, EVENTS_QUEUE, job.data.phone);
    const done = doneKey(prefix, job.id!);
    try {
      // One read of the done record: dispatched already, and which workflows have finished with the event.
      const fields = [DISPATCHED_FIELD, ...targets.map((target) => target.workflow.name)];
      const record = await redis.hmget(done, ...fields);
      if (record[0] === null) {
        await lanes.takeTurn(job, token, eventsQueue, lane);
        const parsed = parseNotifyerPayload(job.data.payload);
        if (!parsed.ok) throw new Error(`job ${job.id} holds an invalid payload`);
        if (await deps.olderShardsBusy({ ...parsed.event, receivedAt: job.data.receivedAt, firstContact: false, traceId: job.data.traceId })) {
          // Still the head of its lane, so the phone's later events wait behind it.
          await job.moveToDelayed(Date.now() + OLDER_SHARDS_RECHECK_MS, token);
          throw new DelayedError();
        }
        const firstContact = parsed.event.direction === 'incoming' && (await isFirstContact(parsed.event.phone, parsed.event.id));
        const event = { ...parsed.event, receivedAt: job.data.receivedAt, firstContact, traceId: job.data.traceId };
        await dispatch(job, event, new Set(fields.filter((field, index) => index > 0 && record[index] !== null)));
      }
      // Also for a second job of an already dispatched event (two deliveries racing at the ingest).
      await lanes.finish(job, token, eventsQueue, lane, {
        doneKey: done,
        field: DISPATCHED_FIELD,
        ttlSeconds: deps.dedupeTtlSeconds,
        stepsKey: stepsKey(prefix, job.id!),
        keepSteps: false,
      });
    } catch (error) {
      if (error instanceof DelayedError) throw error;
      // Dispatch fails only when Redis does: try again, never give the event up.
      const attempt = job.attemptsStarted;
      deps.logger.warn({ eventId: job.id, err: (error as Error).message }, 'dispatch failed, retrying');
      await job.moveToDelayed(Date.now() + backoffDelayMs(Math.min(attempt, 10), deps.backoffBaseMs || 100), token);
      throw new DelayedError();
    }
  };
}

import type { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { defineScript } from './redis-script.js';

/**
 * Queue layout (docs/design.md). The ingest adds one job per event to `events`,
 * with the event id as job id, and appends the event to its phone's intake lane.
 * A worker dispatches each event, in lane order, to one queue per workflow
 * (`forward`, `auto-reply`, ...), appending it to that workflow's lane for the
 * phone. An event that exhausts its attempts moves to `dead-letter`, one entry
 * per event and workflow.
 */
export const EVENTS_QUEUE = 'events';
export const DEAD_LETTER_QUEUE = 'dead-letter';
export const RESERVED_QUEUES: readonly string[] = [EVENTS_QUEUE, DEAD_LETTER_QUEUE];

/** What the ingest stores for each event: the payload as received, read back by the worker (parseAcceptedPayload). */
export interface EventJobData {
  receivedAt: number;
  traceId: string;
  payload: Record<string, unknown>;
  /** Acceptance order, from one Redis counter; orders the phone's lane. */
  seq: number;
  phone: string;
  /**
   * Whether the customer wrote it. Its payload says so too; this copy, with
   * the phone, sits at the start of the job's data, where the worker's
   * completion script reads it (completion.ts). Absent from jobs queued by
   * an older ingest.
   */
  incoming?: boolean;
}

export interface AttemptRecord {
  at: string;
  status: number | null;
  error: string;
  kind: string;
}

/** One workflow's job for one event. */
export interface WorkflowJobData {
  eventId: string;
  workflow: string;
  receivedAt: number;
  traceId: string;
  payload: Record<string, unknown>;
  seq: number;
  /** The lane (ordering key) this job waits its turn in. */
  lane: string;
  firstContact: boolean;
  history?: AttemptRecord[];
  /**
   * When a retry is due (ms): a lane promotes its head when an entry that went
   * ahead of it leaves, which must not cut its backoff or Retry-After short.
   */
  retryAt?: number;
  /** A lane head seen without a job, and when: a second sighting much later removes it. */
  suspect?: { member: string; at: number };
}

export interface DeadLetterJobData extends WorkflowJobData {
  phone: string;
  history: AttemptRecord[];
}

/**
 * The dedupe record that outlives the jobs, a small hash per event: field `_`
 * once the event is dispatched, and one field per workflow that has finished
 * with it. Finished jobs can so be removed at once while redeliveries stay
 * duplicates for DEDUPE_TTL_SECONDS, and a dispatch redone after a crash never
 * re-adds a workflow job that already finished. While the event's job exists,
 * the job key answers for it.
 */
export const doneKey = (prefix: string, eventId: string): string => `${prefix}:done:${eventId}`;
export const jobKey = (prefix: string, queue: string, jobId: string): string => `${prefix}:${queue}:${jobId}`;
export const seqKey = (prefix: string): string => `${prefix}:seq`;
/** A sorted set of event ids by acceptance order: only its head may run. */
export const laneKey = (prefix: string, queue: string, key: string): string => `${prefix}:lane:${queue}:${key}`;
/** BullMQ forbids ":" in custom job ids. */
export const workflowJobId = (workflow: string, eventId: string): string => `${workflow}.${eventId}`;

export const DISPATCHED_FIELD = '_';

/**
 * Puts an event on a workflow's queue behind the earlier events of its lane.
 * The lane entry comes first: a job without a lane entry could run out of turn,
 * while an entry whose job never arrives is removed by the lane's next job.
 * Both steps are idempotent, so a dispatch that crashed half-way is simply redone.
 */
export async function enqueueWorkflowJob(redis: Redis | Cluster, queue: Queue<WorkflowJobData>, data: WorkflowJobData): Promise<void> {
  await redis.zadd(data.lane, 'NX', data.seq, workflowJobId(data.workflow, data.eventId));
  await addWorkflowJob(queue, data);
}

/** The workflow job alone, for a caller that has put it in its lane already; `delayMs` to start it later. */
export async function addWorkflowJob(queue: Queue<WorkflowJobData>, data: WorkflowJobData, delayMs = 0): Promise<void> {
  const jobId = workflowJobId(data.workflow, data.eventId);
  await queue.add(data.workflow, data, { jobId, removeOnComplete: true, removeOnFail: false, delay: Math.max(0, delayMs) });
}

/** The shard prefix a lane belongs to: a replayed job goes back to its own shard. */
export const prefixOfLane = (lane: string): string => lane.slice(0, lane.indexOf(':lane:'));

export const nextSeq = (redis: Redis | Cluster, prefix: string): Promise<number> => redis.incr(seqKey(prefix));

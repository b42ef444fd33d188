import {
  DEAD_LETTER_QUEUE,
  doneKey,
  enqueueWorkflowJob,
  laneKey,
  nextSeq,
  prefixOfLane,
  workflowJobId,
  type DeadLetterJobData,
  type Keyspace,
  type RedisClient,
  type WorkflowJobData,
} from '@replyflow/shared';
import { Queue, type Job } from 'bullmq';
import { CommandFailedError } from './errors.js';

export type DeadLetterJob = Job<DeadLetterJobData>;

/** States in which a workflow job may still run: replaying beside it would be a no-op (same job id) or a double delivery. */
const LIVE_STATES = new Set(['active', 'waiting', 'waiting-children', 'delayed', 'prioritized']);

/**
 * The dead-letter queue as an operator sees it: entries (one per event and
 * workflow) to list, and to put back on their workflow's queue.
 */
export class DeadLetters {
  private readonly queue: Queue<DeadLetterJobData>;
  private readonly workflowQueues = new Map<string, Queue<WorkflowJobData>>();

  constructor(
    private readonly redis: RedisClient,
    /** The current shard layout (ShardLayouts.read). */
    private readonly keyspace: Keyspace,
  ) {
    this.queue = this.open<DeadLetterJobData>(DEAD_LETTER_QUEUE, keyspace.global);
  }

  /** Oldest first. Nothing consumes the queue, so entries wait (or sit paused, if someone paused it). */
  async entries(): Promise<DeadLetterJob[]> {
    const jobs = await this.queue.getJobs(['waiting', 'paused'], 0, -1, true);
    const byId = new Map(jobs.filter((job) => job?.id !== undefined).map((job) => [job.id!, job]));
    return [...byId.values()];
  }

  /**
   * Checks every entry before moving any, so a refusal replays nothing. Each
   * replayed event takes a new sequence number: it is ordered in its lane as
   * if accepted now, behind whatever arrived for that phone meanwhile.
   */
  async replay(entries: readonly DeadLetterJob[]): Promise<void> {
    for (const entry of entries) await this.clearFinishedJob(entry.data);
    for (const entry of entries) {
      const lane = this.currentLane(entry.data);
      const prefix = prefixOfLane(lane);
      const seq = await nextSeq(this.redis, prefix);
      // Dead-lettering recorded the workflow done for the event; a job finding
      // it so would only complete (workflow-runner.ts): the replay redoes it.
      await this.redis.hdel(doneKey(prefix, entry.data.eventId), entry.data.workflow);
      await enqueueWorkflowJob(this.redis, this.workflowQueue(entry.data.workflow, prefix), { ...toWorkflowJob(entry.data, seq), lane });
      // After the enqueue: a crash in between leaves the entry listed (replay again), never lost.
      await entry.remove();
    }
  }

  /**
   * Back to its own lane, where the phone's order lives; after a change of
   * QUEUE_SHARDS, to the same lane in the phone's current shard, which
   * workers still serve.
   */
  private currentLane({ lane, workflow, phone }: DeadLetterJobData): string {
    const prefix = prefixOfLane(lane);
    if (this.keyspace.shards.includes(prefix)) return lane;
    const key = lane.slice(laneKey(prefix, workflow, '').length);
    return laneKey(this.keyspace.shardPrefixOf(phone), workflow, key);
  }

  async close(): Promise<void> {
    await Promise.all([this.queue, ...this.workflowQueues.values()].map((queue) => queue.close()));
  }

  /**
   * A workflow job left behind under the same id (failed, kept by
   * removeOnFail: false) would make BullMQ ignore the replayed one. An entry
   * still in its lane is being dead-lettered right now: the worker has yet to
   * leave the lane, which would then undo the replay.
   */
  private async clearFinishedJob(entry: DeadLetterJobData): Promise<void> {
    const queue = this.workflowQueue(entry.workflow, prefixOfLane(entry.lane));
    const jobId = workflowJobId(entry.workflow, entry.eventId);
    if ((await this.redis.zscore(entry.lane, jobId)) !== null) {
      throw new CommandFailedError(`event ${entry.eventId} is still being dead-lettered on ${entry.workflow}; nothing replayed, try again in a moment`);
    }
    const existing = await queue.getJob(jobId);
    if (!existing) return;
    const state = await existing.getState();
    if (LIVE_STATES.has(state)) {
      throw new CommandFailedError(`event ${entry.eventId} is still ${state} on queue ${entry.workflow}; nothing replayed, try again once it has finished`);
    }
    await existing.remove();
  }

  private workflowQueue(workflow: string, prefix: string): Queue<WorkflowJobData> {
    const key = `${prefix}:${workflow}`;
    let queue = this.workflowQueues.get(key);
    if (!queue) {
      queue = this.open<WorkflowJobData>(workflow, prefix);
      this.workflowQueues.set(key, queue);
    }
    return queue;
  }

  private open<T>(name: string, prefix: string): Queue<T> {
    const queue = new Queue<T>(name, { connection: this.redis, prefix });
    queue.on('error', () => {}); // failures surface as rejected calls
    return queue;
  }
}

/** The workflow job as it was first dispatched, with a fresh sequence and no attempts yet. */
export function toWorkflowJob(entry: DeadLetterJobData, seq: number): WorkflowJobData {
  const { eventId, workflow, receivedAt, traceId, payload, lane, firstContact } = entry;
  return { eventId, workflow, receivedAt, traceId, payload, seq, lane, firstContact, history: [] };
}

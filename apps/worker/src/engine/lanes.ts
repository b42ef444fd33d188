import { defineScript, jobKey, type Logger, type RedisClient, type RedisScript } from '@replyflow/shared';
import { DelayedError, Job, type Queue } from 'bullmq';

/** Safety net only: a parked job is normally promoted by the job before it the moment that one finishes. */
const PARK_MS = 30_000;
/** A lane head with no job that is still there this much later is an abandoned claim (docs/design.md). */
const ABANDONED_AFTER_MS = 10_000;

// Records the outcome in the event's done record, settles the job's step
// hash and leaves the lane, in one round trip, and only while holding the
// job's lock: a worker that froze past its lock must not let the next event
// start while another worker re-runs this one. A job BullMQ has failed holds
// no lock and leaves with an empty token.
// KEYS: lane, lock, done record, steps. ARGV: member, token, done field, ttl, keep steps (1/0).
const LEAVE_SCRIPT = `
if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[2] then return false end
redis.call('HSET', KEYS[3], ARGV[3], '1')
redis.call('EXPIRE', KEYS[3], ARGV[4])
if ARGV[5] == '1' then redis.call('EXPIRE', KEYS[4], ARGV[4]) else redis.call('DEL', KEYS[4]) end
redis.call('ZREM', KEYS[1], ARGV[1])
local head = redis.call('ZRANGE', KEYS[1], 0, 0)
return head[1] or false`;

/** What finishing writes to the event's done record, and what becomes of the job's steps. */
export interface FinishRecord {
  doneKey: string;
  field: string;
  ttlSeconds: number;
  stepsKey: string;
  keepSteps: boolean;
}

export interface LaneJobData {
  seq: number;
  suspect?: { member: string; at: number };
}

/**
 * Per-key order without BullMQ Pro groups. Every job waits in a sorted set (its
 * lane) by acceptance sequence; only the head runs. A job that is not the head
 * parks itself in BullMQ's delayed set, and the head promotes the next one when
 * it leaves. See docs/design.md for why this holds across crashes.
 */
export class Lanes {
  private readonly leave: RedisScript;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.leave = defineScript(redis, 'replyflowFinishInLane', 4, LEAVE_SCRIPT);
  }

  /** Resolves when `job` heads its lane; otherwise parks it and throws DelayedError. */
  async takeTurn(job: Job<LaneJobData>, token: string | undefined, queue: Queue, lane: string): Promise<void> {
    for (;;) {
      const [head] = await this.redis.zrange(lane, 0, 0);
      if (head === job.id) return;
      if (head === undefined) {
        // Not in its lane at all (should not happen): rejoin rather than run out of turn.
        await this.redis.zadd(lane, 'NX', job.data.seq, job.id!);
        continue;
      }
      if (await this.isAbandoned(job, head, queue.name)) {
        await this.redis.zrem(lane, head);
        this.logger.warn({ lane: this.describe(lane), member: head }, 'lane head had no job; skipped it');
        continue;
      }
      await this.park(job, token, lane);
    }
  }

  /** Records the outcome and leaves the lane (while holding the lock), then wakes the next job of the lane. */
  async finish(job: Job<LaneJobData>, token: string | undefined, queue: Queue, lane: string, record: FinishRecord): Promise<void> {
    const lockKey = `${jobKey(this.prefix, queue.name, job.id!)}:lock`;
    const next = (await this.leave(
      [lane, lockKey, record.doneKey, record.stepsKey],
      [job.id!, token ?? '', record.field, record.ttlSeconds, record.keepSteps ? 1 : 0],
    )) as string | null;
    if (next) await this.promote(queue, next);
  }

  private async park(job: Job<LaneJobData>, token: string | undefined, lane: string): Promise<never> {
    const wakeAt = Date.now() + (job.data.suspect ? ABANDONED_AFTER_MS + 1_000 : PARK_MS);
    await job.moveToDelayed(wakeAt, token);
    // The head may have left between our check and the move, promoting nobody:
    // checking again after the move closes that gap (docs/design.md).
    const [head] = await this.redis.zrange(lane, 0, 0);
    if (head === job.id) await job.promote().catch(() => {});
    throw new DelayedError();
  }

  private async isAbandoned(job: Job<LaneJobData>, head: string, queueName: string): Promise<boolean> {
    if ((await this.redis.exists(jobKey(this.prefix, queueName, head))) > 0) return false;
    const { suspect } = job.data;
    if (suspect?.member === head && Date.now() - suspect.at >= ABANDONED_AFTER_MS) return true;
    if (suspect?.member !== head) await job.updateData({ ...job.data, suspect: { member: head, at: Date.now() } });
    return false;
  }

  private async promote(queue: Queue, jobId: string): Promise<void> {
    // A bare Job handle: promote needs only the id, and loading the job (its
    // whole payload) first cost a round trip per event.
    const next = new Job(queue, '', {}, {}, jobId);
    await next.promote().catch(() => {}); // not delayed: it will find its turn when it runs
  }

  private describe(lane: string): string {
    // Lanes end with the ordering key (a phone): keep it out of logs.
    return lane.slice(0, lane.lastIndexOf(':'));
  }
}

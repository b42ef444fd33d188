import { defineBatchedScript, defineScript, jobKey, seqKey, EVENTS_QUEUE, type Logger, type BatchedScript, type RedisClient, type RedisScript } from '@replyflow/shared';
import { DelayedError, Job, type Queue } from 'bullmq';

/** Safety net only: a parked job is normally promoted by the job before it the moment that one finishes. */
const PARK_MS = 30_000;
/** A lane head with no job that is still there this much later is an abandoned claim (docs/design.md). */
const ABANDONED_AFTER_MS = 10_000;

// Records outcomes in the event's done record, settles step hashes and
// leaves lanes, in one round trip, and only while holding the job's lock: a
// worker that froze past its lock must not let the next event start while
// another worker re-runs this one. A job BullMQ has failed holds no lock and
// leaves with an empty token. One exit per lane: a workflow job leaves its
// own; the dispatcher leaves the intake lane and, with the same lock, the lanes
// of the workflows it ran inline. Returns each lane's new head if it is parked
// in its queue's delayed set, else '': a head that is waiting or running needs
// no promotion, and BullMQ answers a needless one with an error. Each
// redis.call costs about a microsecond of Redis beyond its command, so the
// done record takes every field in one HSET and a steps hash never written is
// not deleted.
// KEYS: lock, done record, then per exit its lane, steps hash and queue's delayed set.
// ARGV: token, ttl, then per exit its member, done field ('' for none) and what becomes of the steps (StepsFate).
// The dispatcher's last one runs inside BullMQ's completion (completion.ts).
export const LEAVE_LANES_LUA = `
local function leaveLanes(KEYS, ARGV)
  if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
  local heads, fields = {}, {}
  for i = 1, (#KEYS - 2) / 3 do
    local lane, steps, delayed = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
    local member, fate = ARGV[3 * i], ARGV[3 * i + 2]
    if ARGV[3 * i + 1] ~= '' then
      fields[#fields + 1] = ARGV[3 * i + 1]
      fields[#fields + 1] = '1'
    end
    if fate == 'keep' then redis.call('EXPIRE', steps, ARGV[2]) elseif fate == 'drop' then redis.call('DEL', steps) end
    redis.call('ZREM', lane, member)
    local head = redis.call('ZRANGE', lane, 0, 0)[1]
    heads[i] = (head and redis.call('ZSCORE', delayed, head)) and head or ''
  end
  if #fields > 0 then redis.call('HSET', KEYS[2], unpack(fields)) end
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return heads
end`;

const LEAVE_SCRIPT = `${LEAVE_LANES_LUA}
return leaveLanes(KEYS, ARGV)`;

// Joins a workflow's lane for the dispatcher, and says what to do: 'finished'
// (the done record has the workflow: the caller read it, as `finished`),
// 'queued' (its job exists: a redone dispatch), 'behind' (an earlier entry
// heads the lane: enqueue the job), or 'head' with the job's stored steps (run
// it now). Inside one script, so nothing can finish or join between the
// checks. The dispatcher's turn script calls it too (dispatcher.ts), having
// read the done record once for all its lanes.
// An entry never goes ahead of a head that is running: one whose number is
// older (an event dispatched late, behind its phone's backlog, into a lane
// that a replayed dead letter or, with a workflow key, another phone's event
// already heads) goes ahead of a head that waits, as its number says, but
// behind a running one, with the shard's next number, as if accepted now. A
// head runs while its workflow job, or for a run inline its event's job,
// holds a BullMQ lock; those keys are named as the script's own keys are.
// An entry just added has neither a job nor stored steps, which are only
// ever written for an entry in its lane, and leave it only with the done
// record's field set (or, for an abandoned head, with no job left): only an
// entry found there already is looked up (a redone dispatch), two commands
// fewer for every event.
export const JOIN_LANE_LUA = `
local function headRunning(job, member, head, seqKey)
  local jobs = string.sub(job, 1, #job - #member)
  if redis.call('EXISTS', jobs .. head .. ':lock') == 1 then return true end
  local events = string.sub(seqKey, 1, #seqKey - 3) .. '${EVENTS_QUEUE}:'
  return redis.call('EXISTS', events .. string.sub(head, string.find(head, '.', 1, true) + 1) .. ':lock') == 1
end
local function joinLane(finished, lane, job, steps, member, seq, seqKey)
  if finished then return {'finished'} end
  local head = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES')
  local first = head[1] == nil or head[1] == member
  local added = false
  if head[1] ~= member then
    if head[1] and tonumber(head[2]) > tonumber(seq) then
      if headRunning(job, member, head[1], seqKey) then seq = redis.call('INCR', seqKey) else first = true end
    end
    added = redis.call('ZADD', lane, 'NX', seq, member) == 1
    if not added then first = false end
  end
  if not added and redis.call('EXISTS', job) == 1 then return {'queued'} end
  if not first then return {'behind'} end
  if added then return {'head', {}} end
  return {'head', redis.call('HGETALL', steps)}
end`;

// KEYS: lane, workflow job, steps, done record, the shard's sequence. ARGV: member, seq, done field.
const JOIN_SCRIPT = `${JOIN_LANE_LUA}
return joinLane(redis.call('HEXISTS', KEYS[4], ARGV[3]) == 1, KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], KEYS[5])`;

/** joinLane's reply, read. */
export function joinAnswerOf(reply: unknown): JoinAnswer {
  const [state, flat] = reply as [JoinAnswer['state'], string[]?];
  if (state !== 'head') return { state };
  const stored: Record<string, string> = {};
  for (let i = 0; i + 1 < flat!.length; i += 2) stored[flat![i]!] = flat![i + 1]!;
  return { state, stored };
}

/**
 * What finishing does with a job's steps hash: `keep` it for a while (a dead
 * letter's, so a replay resumes), `drop` it, or nothing at all when it was
 * never written (`none`: a DEL costs Redis even on a missing key).
 */
export type StepsFate = 'keep' | 'drop' | 'none';

/** A finished job's steps: dropped, unless nothing was ever written to drop. */
export const finishedStepsFate = (stepsStored: boolean): StepsFate => (stepsStored ? 'drop' : 'none');

/** Leaving one lane: what finishing writes to the event's done record, and what becomes of the steps. */
export interface LaneExit {
  /** The queue of the lane's jobs, where its next head is promoted. */
  queue: Queue;
  lane: string;
  member: string;
  /** '' to record nothing: a lane left before the job finishes. */
  field: string;
  stepsKey: string;
  steps: StepsFate;
}

export interface LaneSeat {
  lane: string;
  member: string;
  seq: number;
  jobKey: string;
  doneKey: string;
  field: string;
  stepsKey: string;
}

export type JoinAnswer = { state: 'finished' | 'queued' | 'behind' } | { state: 'head'; stored: Record<string, string> };

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
  private readonly leave: BatchedScript;
  private readonly joinScript: RedisScript;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {
    this.leave = defineBatchedScript(redis, 'replyflowLeaveLanes', LEAVE_SCRIPT);
    this.joinScript = defineScript(redis, 'replyflowJoinLane', JOIN_SCRIPT);
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

  /**
   * Records the outcomes and leaves the lanes (while holding the job's lock),
   * then wakes the next job of each lane. Whether the lock was held.
   */
  async finish(job: Job, token: string | undefined, queue: Queue, doneKey: string, ttlSeconds: number, exits: readonly LaneExit[]): Promise<boolean> {
    const keys = [`${jobKey(this.prefix, queue.name, job.id!)}:lock`, doneKey];
    const args = [token ?? '', String(ttlSeconds)];
    // Loops, not flatMap and spreads: this runs for every event.
    for (const exit of exits) {
      keys.push(exit.lane, exit.stepsKey, exit.queue.keys.delayed!);
      args.push(exit.member, exit.field, exit.steps);
    }
    const heads = (await this.leave(this.prefix, keys, args)) as string[] | null;
    await Promise.all((heads ?? []).map((head, index) => (head ? this.promote(exits[index]!.queue, head) : undefined)));
    return heads !== null;
  }

  /** Puts `seat.member` in its lane (NX) unless its workflow already finished; see JOIN_LANE_LUA for the answers. */
  async join(seat: LaneSeat): Promise<JoinAnswer> {
    const keys = [seat.lane, seat.jobKey, seat.stepsKey, seat.doneKey, seqKey(this.prefix)];
    return joinAnswerOf(await this.joinScript(keys, [seat.member, seat.seq, seat.field]));
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
    // A workflow's head may have no job because the dispatcher is running it inline: its event's job stands for it.
    const eventJob = jobKey(this.prefix, EVENTS_QUEUE, head.slice(head.indexOf('.') + 1));
    if ((await this.redis.exists(jobKey(this.prefix, queueName, head), eventJob)) > 0) return false;
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

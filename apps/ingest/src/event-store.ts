import {
  defineScript,
  doneKey,
  jobKey,
  laneKey,
  seqKey,
  waitForReplicas,
  withDeadline,
  EVENTS_QUEUE,
  type EventJobData,
  type Keyspace,
  type RedisClient,
  type RedisScript,
} from '@replyflow/shared';
import type { Queue } from 'bullmq';

export type StoreOutcome = 'queued' | 'duplicate';

/** How long a webhook may wait for Redis before it is told to come back later (contract: 1 s). */
const STORE_DEADLINE_MS = 1000;
const REPLICA_WAIT_MS = 500;

// Known: done record or job present. Otherwise the event takes its place in its
// phone's lane (keeping the place a failed earlier store took) and gets its
// acceptance sequence number, in the same round trip as the check.
const CLAIM_SCRIPT = `
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return -1 end
local seq = redis.call('ZSCORE', KEYS[3], ARGV[1])
if seq then return tonumber(seq) end
seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return seq`;

/**
 * Stores each event once, in two round trips: the claim script, then BullMQ's
 * add with the event id as job id. An id is a duplicate while its job exists
 * or, after the job is gone, while its done record lives; both are written only
 * with or after the event itself, so a crash never turns a lost event into a
 * "duplicate". Two deliveries racing past the claim add the same job id, which
 * BullMQ turns into one job. A lane entry whose add failed is reused by the
 * redelivery, or skipped by the phone's next event (docs/design.md). Every key
 * of one event lives in its phone's shard, so one cluster slot serves it.
 */
export class EventStore {
  private readonly claim: RedisScript;

  constructor(
    private readonly redis: RedisClient,
    /** One `events` queue per shard, by shard number. */
    private readonly queues: readonly Queue<EventJobData>[],
    private readonly keyspace: Keyspace,
    private readonly ackReplicas: number,
  ) {
    this.claim = defineScript(redis, 'replyflowClaimEvent', CLAIM_SCRIPT);
  }

  store(eventId: string, phone: string, data: Omit<EventJobData, 'seq' | 'phone'>): Promise<StoreOutcome> {
    return withDeadline(this.storeOnce(eventId, phone, data), STORE_DEADLINE_MS);
  }

  private async storeOnce(eventId: string, phone: string, data: Omit<EventJobData, 'seq' | 'phone'>): Promise<StoreOutcome> {
    const shard = this.keyspace.shardOf(phone);
    const p = this.keyspace.shards[shard]!;
    const keys = [doneKey(p, eventId), jobKey(p, EVENTS_QUEUE, eventId), laneKey(p, EVENTS_QUEUE, phone), seqKey(p)];
    const seq = Number(await this.claim(keys, [eventId]));
    if (seq < 0) return 'duplicate';
    await this.queues[shard]!.add('event', { ...data, seq, phone }, { jobId: eventId, removeOnComplete: true, removeOnFail: false });
    // Redis replicates asynchronously: without this, a failover right after
    // the 202 could lose an acknowledged event (REDIS_ACK_REPLICAS).
    if (this.ackReplicas > 0) await waitForReplicas(this.redis, keys[1]!, this.ackReplicas, REPLICA_WAIT_MS);
    return 'queued';
  }
}

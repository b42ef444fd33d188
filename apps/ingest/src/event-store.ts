import {
  defineScript,
  doneKey,
  jobKey,
  laneKey,
  seqKey,
  shardOwnerKey,
  waitForReplicas,
  withDeadline,
  EVENTS_QUEUE,
  type EventJobData,
  type Keyspace,
  type RedisClient,
  type RedisScript,
  type ShardLayouts,
} from '@replyflow/shared';
import { Queue } from 'bullmq';

export type StoreOutcome = 'queued' | 'duplicate';

/** How long a webhook may wait for Redis before it is told to come back later (contract: 1 s). */
const STORE_DEADLINE_MS = 1000;
const REPLICA_WAIT_MS = 500;
const FENCED = -2;
/** A shard that refuses our shard count: read the layout again and retry, this many times. */
const FENCED_RETRIES = 3;

// The shard must belong to our shard count (layouts.ts): a process that has
// not yet seen a change of QUEUE_SHARDS is refused. Known: done record or job
// present. Otherwise the event takes its place in its phone's lane (keeping
// the place a failed earlier store took) and gets its acceptance sequence
// number, in the same round trip as the checks.
const CLAIM_SCRIPT = `
if redis.call('GET', KEYS[5]) ~= ARGV[2] then return ${FENCED} end
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
  private readonly queues = new Map<string, Queue<EventJobData>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly layouts: ShardLayouts,
    private readonly ackReplicas: number,
  ) {
    this.claim = defineScript(redis, 'replyflowClaimEvent', 5, CLAIM_SCRIPT);
  }

  store(eventId: string, phone: string, data: Omit<EventJobData, 'seq' | 'phone'>): Promise<StoreOutcome> {
    return withDeadline(this.storeOnce(eventId, phone, data), STORE_DEADLINE_MS);
  }

  /** The `events` queue of a shard, opened on first use: shards come and go with QUEUE_SHARDS changes. */
  queue(shardPrefix: string): Queue<EventJobData> {
    let queue = this.queues.get(shardPrefix);
    if (!queue) {
      queue = new Queue<EventJobData>(EVENTS_QUEUE, { connection: this.redis, prefix: shardPrefix, streams: { events: { maxLen: 1000 } } });
      queue.on('error', () => {}); // failures surface as rejected adds
      this.queues.set(shardPrefix, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
  }

  private async storeOnce(eventId: string, phone: string, data: Omit<EventJobData, 'seq' | 'phone'>): Promise<StoreOutcome> {
    if (await this.knownInRetiredShards(eventId, phone)) return 'duplicate';
    for (let attempt = 1; ; attempt++) {
      const keyspace = this.layouts.current;
      const p = keyspace.shards[keyspace.shardOf(phone)]!;
      const keys = [doneKey(p, eventId), jobKey(p, EVENTS_QUEUE, eventId), laneKey(p, EVENTS_QUEUE, phone), seqKey(p), shardOwnerKey(p)];
      const seq = Number(await this.claim(keys, [eventId, keyspace.shardCount]));
      if (seq === FENCED) {
        if (attempt === FENCED_RETRIES) throw new Error('the shard layout is changing');
        await this.layouts.refresh();
        continue;
      }
      if (seq < 0) return 'duplicate';
      await this.add(p, eventId, { ...data, seq, phone }, keys[1]!);
      return 'queued';
    }
  }

  /**
   * After a change of QUEUE_SHARDS, an event accepted before it lives in its
   * old shard. A place in the old lane without the job means an old store is
   * still adding it, or failed to: the caller gets a 503 and retries.
   */
  private async knownInRetiredShards(eventId: string, phone: string): Promise<boolean> {
    const found = await Promise.all(
      this.layouts.retired().map(async (keyspace: Keyspace) => {
        const p = keyspace.shards[keyspace.shardOf(phone)]!;
        const [stored, placed] = await Promise.all([
          this.redis.exists(doneKey(p, eventId), jobKey(p, EVENTS_QUEUE, eventId)),
          this.redis.zscore(laneKey(p, EVENTS_QUEUE, phone), eventId),
        ]);
        if (stored === 0 && placed !== null) throw new Error('the event is still being stored in its shard from before the layout change');
        return stored > 0;
      }),
    );
    return found.includes(true);
  }

  private async add(p: string, eventId: string, data: EventJobData, jobKeyOfEvent: string): Promise<void> {
    await this.queue(p).add('event', data, { jobId: eventId, removeOnComplete: true, removeOnFail: false });
    // Redis replicates asynchronously: without this, a failover right after
    // the 202 could lose an acknowledged event (REDIS_ACK_REPLICAS).
    if (this.ackReplicas > 0) await waitForReplicas(this.redis, jobKeyOfEvent, this.ackReplicas, REPLICA_WAIT_MS);
  }
}

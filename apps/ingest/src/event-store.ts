import {
  doneKey,
  jobKey,
  laneKey,
  seqKey,
  waitForReplicas,
  withDeadline,
  EVENTS_QUEUE,
  type Keyspace,
  type RedisClient,
  type ShardLayouts,
} from '@replyflow/shared';
import { Queue } from 'bullmq';
import { defineEnqueueScript, DUPLICATE, FENCED, type EnqueueScript } from './enqueue-script.js';

export type StoreOutcome = 'queued' | 'duplicate';

/** What the ingest knows of an event besides its id and phone; `payloadJson` is the body's text, which parsed as JSON. */
export interface IncomingEvent {
  receivedAt: number;
  traceId: string;
  /** Whether the customer wrote it (direction `incoming`), rather than the business. */
  incoming: boolean;
  payloadJson: string;
}

/**
 * The event's job data (EventJobData) as JSON, without `seq` (the store
 * script adds it). The payload goes in as the text it arrived as: it parsed
 * as JSON, so it reads back as the same value, without a second stringify.
 */
function jobDataJson(phone: string, event: IncomingEvent): string {
  // The phone and direction come first, right after the seq the script puts
  // first: the worker's completion script reads them there (completion.ts).
  return `{"phone":${JSON.stringify(phone)},"incoming":${event.incoming},"receivedAt":${event.receivedAt},"traceId":${JSON.stringify(event.traceId)},"payload":${event.payloadJson}}`;
}

/** How long a webhook may wait for Redis before it is told to come back later (contract: 1 s). */
const STORE_DEADLINE_MS = 1000;
const REPLICA_WAIT_MS = 500;
const QUEUE_READY_AT_STOP_MS = 1000;
/** A shard that refuses our shard count: read the layout again and retry, this many times. */
const FENCED_RETRIES = 3;

/**
 * Stores each event once, in one round trip: one script checks for a
 * duplicate, gives the event its place in its phone's lane and adds its BullMQ
 * job, with the event id as job id (enqueue-script.ts). An id is a duplicate
 * while its job exists or, after the job is gone, while its done record lives;
 * both are written only with or after the event itself, so a crash never turns
 * a lost event into a "duplicate". Every key of one event lives in its phone's
 * shard, so one cluster slot serves it.
 */
export class EventStore {
  private readonly enqueue: EnqueueScript;
  private readonly queues = new Map<string, Queue>();
  /**
   * BullMQ defines its 54 scripts on the connection a Queue is given, and
   * ioredis copies every defined script into each auto-pipeline batch: the
   * Queues get a connection of their own, so the store's batches stay light.
   */
  private queueConnection: RedisClient | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly layouts: ShardLayouts,
    private readonly ackReplicas: number,
  ) {
    this.enqueue = defineEnqueueScript(redis);
  }

  store(eventId: string, phone: string, event: IncomingEvent): Promise<StoreOutcome> {
    return withDeadline(this.storeOnce(eventId, phone, jobDataJson(phone, event)), STORE_DEADLINE_MS);
  }

  /**
   * The `events` queue of a shard, opened on first use (shards come and go
   * with QUEUE_SHARDS changes). The script adds the jobs; the Queue writes the
   * queue's settings (the cap on its event stream) and is what the ingest closes.
   */
  private openQueue(shardPrefix: string): Queue {
    let queue = this.queues.get(shardPrefix);
    if (!queue) {
      this.queueConnection ??= this.redis.duplicate();
      queue = new Queue(EVENTS_QUEUE, { connection: this.queueConnection, prefix: shardPrefix, streams: { events: { maxLen: 1000 } } });
      queue.on('error', () => {}); // failures surface as rejected adds
      this.queues.set(shardPrefix, queue);
    }
    return queue;
  }

  async close(): Promise<void> {
    const queues = [...this.queues.values()];
    // A Queue opened just before the stop may still be starting on the shared
    // connection: closed then, its start fails once the connection quits and
    // BullMQ reports it where no listener is left, which ends the process.
    await Promise.all(queues.map((queue) => withDeadline(queue.waitUntilReady(), QUEUE_READY_AT_STOP_MS).catch(() => {})));
    await Promise.all(queues.map((queue) => queue.close()));
    await this.queueConnection?.quit().catch(() => this.queueConnection?.disconnect());
  }

  private async storeOnce(eventId: string, phone: string, data: string): Promise<StoreOutcome> {
    const retired = this.layouts.retired();
    const knownIn = retired.length > 0 ? await this.shardKnowing(retired, eventId, phone) : undefined;
    if (knownIn !== undefined) return this.duplicate(knownIn, eventId);
    for (let attempt = 1; ; attempt++) {
      const keyspace = this.layouts.current;
      const p = keyspace.shardPrefixOf(phone);
      this.openQueue(p);
      const outcome = await this.enqueue(p, keyspace.shardCount, eventId, phone, data);
      if (outcome === FENCED) {
        if (attempt === FENCED_RETRIES) throw new Error('the shard layout is changing');
        await this.layouts.refresh();
        continue;
      }
      if (outcome === DUPLICATE) return this.duplicate(p, eventId);
      if (typeof outcome === 'number') throw new Error(`adding the job failed with code ${outcome}`);
      if (this.ackReplicas > 0) await this.replicated(p, eventId);
      return 'queued';
    }
  }

  /**
   * Redis replicates asynchronously: without this, a failover right after the
   * 2xx could lose an acknowledged event (REDIS_ACK_REPLICAS).
   */
  private replicated(shardPrefix: string, eventId: string): Promise<void> {
    return waitForReplicas(this.redis, jobKey(shardPrefix, EVENTS_QUEUE, eventId), this.ackReplicas, REPLICA_WAIT_MS);
  }

  /**
   * A 200 duplicate promises the event is stored as much as a 202 does. The
   * earlier store may have gone unreplicated (its sender got a 503 and
   * retried) and may have come from another connection, which WAIT does not
   * count: a write of our own after it, replicated in order behind it, does.
   */
  private async duplicate(shardPrefix: string, eventId: string): Promise<StoreOutcome> {
    if (this.ackReplicas > 0) {
      await this.redis.incrby(seqKey(shardPrefix), 0);
      await this.replicated(shardPrefix, eventId);
    }
    return 'duplicate';
  }

  /**
   * After a change of QUEUE_SHARDS, an event accepted before it lives in its
   * old shard: the prefix of the old shard that holds it, if one does. A
   * place in the old lane without the job means an old store is still adding
   * it, or failed to: the caller gets a 503 and retries.
   */
  private async shardKnowing(retired: Keyspace[], eventId: string, phone: string): Promise<string | undefined> {
    const found = await Promise.all(
      retired.map(async (keyspace) => {
        const p = keyspace.shardPrefixOf(phone);
        const [stored, placed] = await Promise.all([
          this.redis.exists(doneKey(p, eventId), jobKey(p, EVENTS_QUEUE, eventId)),
          this.redis.zscore(laneKey(p, EVENTS_QUEUE, phone), eventId),
        ]);
        if (stored === 0 && placed !== null) throw new Error('the event is still being stored in its shard from before the layout change');
        return stored > 0 ? p : undefined;
      }),
    );
    return found.find((p) => p !== undefined);
  }
}

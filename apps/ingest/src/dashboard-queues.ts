import type { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { Cluster, DEAD_LETTER_QUEUE, EVENTS_QUEUE, type Keyspace, type Logger, type Redis, type RedisClient } from '@replyflow/shared';
import { Queue } from 'bullmq';

type Board = ReturnType<typeof createBullBoard>;

const REFRESH_AT_MOST_EVERY_MS = 2_000;

/**
 * The BullMQ queues on the board, one Queue each over the dashboard's own
 * connection (a standalone Redis or a Cluster).
 *
 * Which queues: the ingest cannot know the workflows (user workflows live in
 * the workers' WORKFLOWS module), and a fixed list would show `auto-reply` to
 * someone without REPLY_RULES but never their own workflow. So it lists what
 * Redis holds: every shard's `events` and `dead-letter` always (the intake, and
 * where an operator looks first when something went wrong), every queue with a
 * BullMQ `meta` key found by one SCAN at start, and every queue a BullMQ worker
 * is connected to (workers name their connection after their queue), checked
 * every few seconds and whenever the dashboard asks for its queue list. A
 * periodic SCAN would walk every key, including one dedupe marker per event of
 * the last DEDUPE_TTL_SECONDS, which is a lot of Redis time for a page nobody
 * may be looking at; CLIENT LIST costs one short command a node. A queue stays
 * listed once seen.
 */
export class DashboardQueues {
  private readonly queues = new Map<string, Queue>();
  private refreshing: Promise<void> | undefined;
  private refreshedAt = 0;
  private failing = false;
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly board: Board,
    private readonly queuePrefix: string,
    /** The current shard layout: it changes with QUEUE_SHARDS (layouts.ts). */
    private readonly keyspace: () => Keyspace,
    private readonly logger: Logger,
  ) {}

  /** The queues that exist as soon as anything runs: every shard's intake, and the dead letters. */
  showAlwaysListed(): void {
    const keyspace = this.keyspace();
    for (const prefix of keyspace.shards) this.show(prefix, EVENTS_QUEUE);
    this.show(keyspace.global, DEAD_LETTER_QUEUE);
  }

  show(prefix: string, name: string): void {
    const qualified = `${prefix}:${name}`;
    if (this.closed || this.queues.has(qualified)) return;
    // skipMetasUpdate: looking at a queue must not write to Redis.
    const queue = new Queue(name, { connection: this.redis, prefix, skipMetasUpdate: true });
    queue.on('error', () => {});
    this.queues.set(qualified, queue);
    // Shard queues share names across prefixes and the board keys queues by name,
    // so they keep their prefix there; the menu shows them as the metrics label them (`events@0`).
    const keyspace = this.keyspace();
    const displayPrefix = prefix === keyspace.global ? '' : `${prefix}:`;
    const shard = keyspace.shards.indexOf(prefix);
    const displayName = shard < 0 ? undefined : keyspace.queueLabel(name, shard);
    this.board.addQueue(new BullMQAdapter(queue, { prefix: displayPrefix, displayName, ...adapterOptions(name) }));
  }

  /** Every queue holding anything: BullMQ writes `<prefix>:<queue>:meta` with a queue's first job. */
  async showStored(): Promise<void> {
    await this.quietly(() =>
      eachNode(mastersOf(this.redis), async (node) => {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', '*:meta', 'COUNT', 1000);
          cursor = next;
          for (const key of keys) this.showParsed(key.slice(0, -':meta'.length));
        } while (cursor !== '0');
      }),
    );
  }

  /** Queues with a worker connected: BullMQ names a worker's connection `<prefix>:<base64 queue name>[:w:<worker name>]`. */
  refreshFromWorkers(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.refreshedAt < REFRESH_AT_MOST_EVERY_MS) return Promise.resolve();
    this.refreshing = this.quietly(() =>
      eachNode(allNodesOf(this.redis), async (node) => {
        const clients = (await node.client('LIST')) as string;
        for (const [, name] of clients.matchAll(/ name=(\S+)/g)) this.showConnectionOf(name!);
      }),
    ).finally(() => {
      this.refreshedAt = Date.now();
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.queues.values()].map((queue) => queue.close()));
  }

  private showConnectionOf(clientName: string): void {
    const connection = clientName.replace(/:w:.*$/, '').replace(/:qe$/, '');
    const split = connection.lastIndexOf(':');
    const encoded = connection.slice(split + 1);
    const queueName = Buffer.from(encoded, 'base64').toString('utf8');
    if (split > 0 && Buffer.from(queueName, 'utf8').toString('base64') === encoded) {
      this.showParsed(`${connection.slice(0, split)}:${queueName}`);
    }
  }

  /** `<prefix>:<queue>`, where the prefix is ours or hash-tagged (`{<prefix>}`, `{<prefix>:<shard>:<n>}`); BullMQ queue names never hold ":". */
  private showParsed(qualified: string): void {
    const split = qualified.lastIndexOf(':');
    const prefix = qualified.slice(0, split);
    const name = qualified.slice(split + 1);
    if (split > 0 && name !== '' && this.isOurs(prefix)) this.show(prefix, name);
  }

  private isOurs(prefix: string): boolean {
    const ours = this.queuePrefix;
    return prefix === ours || prefix === `{${ours}}` || (prefix.startsWith(`{${ours}:`) && prefix.endsWith('}'));
  }

  /** Redis being away is the ingest's to report; the board just shows what it knew. */
  private async quietly(work: () => Promise<void>): Promise<void> {
    try {
      await work();
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.logger.warn({ err: (error as Error).message }, 'queue dashboard could not list the queues');
      this.failing = true;
    }
  }
}

/** Keys live on the masters; a SCAN sent through a Cluster client would walk one node only. */
function mastersOf(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** A worker's connection stays on the node it opened, which a failover may since have made a replica; CLIENT LIST is cheap, so every node is asked. */
function allNodesOf(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('all') : [redis];
}

/** What the reachable nodes answer still counts when one node fails; the failure is then reported. */
async function eachNode(nodes: Redis[], work: (node: Redis) => Promise<void>): Promise<void> {
  const failed = (await Promise.allSettled(nodes.map(work))).find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
}

function adapterOptions(name: string) {
  if (name === DEAD_LETTER_QUEUE) {
    // Nothing consumes this queue, so a retry here would do nothing; replay puts an event back on its workflow's queue.
    return { readOnlyMode: true, description: 'Events that used up their attempts or failed permanently: replay them with `replyflow dlq replay`' };
  }
  return {
    // A completed job's event was handled: running it again would forward it twice.
    allowCompletedRetries: false,
    description: name === EVENTS_QUEUE ? 'Accepted webhooks, each dispatched to the workflows it matches' : `Workflow "${name}": one job per event`,
  };
}

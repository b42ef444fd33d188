import type { Keyspace, Logger, ShardLayouts } from '@replyflow/shared';
import type { Queue, Worker } from 'bullmq';
import type { ServedShard } from './queue-stats.js';

export interface RunningShard {
  workers: Worker[];
  queues: Queue[];
}

export interface ShardSetOptions {
  layouts: ShardLayouts;
  /** This worker's QUEUE_SHARDS and WORKER_SHARDS. */
  configuredShards: number;
  pinnedShards: readonly number[];
  start: (shardPrefix: string) => RunningShard;
  logger: Logger;
}

/**
 * The shards this worker serves, following changes of QUEUE_SHARDS: the
 * current layout's (only the WORKER_SHARDS ones while the layout is the one
 * they were numbered for), and every shard of a retired layout until it has
 * drained, so that no event is left behind in an old shard.
 */
export class ShardSet {
  private readonly running = new Map<string, RunningShard & { label: (queue: string) => string }>();
  private syncing = Promise.resolve();

  constructor(private readonly options: ShardSetOptions) {
    options.layouts.onChange(() => {
      this.syncing = this.syncing.then(() => this.sync());
    });
  }

  served(): ServedShard[] {
    return [...this.running].map(([prefix, { label }]) => ({ prefix, label }));
  }

  workers(): Worker[] {
    return [...this.running.values()].flatMap((shard) => shard.workers);
  }

  /** Starts the shards that should run and stops (gracefully) those that no longer should. */
  async sync(): Promise<void> {
    const wanted = this.wanted();
    for (const [prefix, label] of wanted) {
      if (!this.running.has(prefix)) this.running.set(prefix, { ...this.options.start(prefix), label });
    }
    const unwanted = [...this.running].filter(([prefix]) => !wanted.has(prefix));
    for (const [prefix] of unwanted) this.running.delete(prefix);
    await Promise.all(unwanted.map(([, shard]) => closeShard(shard)));
  }

  async close(): Promise<void> {
    await this.syncing;
    const shards = [...this.running.values()];
    this.running.clear();
    await Promise.all(shards.map(closeShard));
  }

  private wanted(): Map<string, (queue: string) => string> {
    const { layouts, configuredShards, pinnedShards, logger } = this.options;
    const current = layouts.current;
    const pinned = current.shardCount === configuredShards ? pinnedShards : allShards(current);
    if (current.shardCount !== configuredShards && pinnedShards.length < configuredShards) {
      logger.warn({ configured: configuredShards, current: current.shardCount }, 'WORKER_SHARDS is numbered for another QUEUE_SHARDS: serving every shard');
    }
    const wanted = new Map(pinned.map((shard) => [current.shards[shard]!, (queue: string) => current.queueLabel(queue, shard)]));
    const draining = layouts.draining()?.keyspace;
    for (const shard of draining ? allShards(draining) : []) {
      wanted.set(draining!.shards[shard]!, (queue) => `${queue}@${shard}/${draining!.shardCount}`);
    }
    return wanted;
  }
}

const allShards = (keyspace: Keyspace): number[] => keyspace.shards.map((_, shard) => shard);

async function closeShard(shard: RunningShard): Promise<void> {
  // Workers first: each finishes its active jobs before its queues close.
  await Promise.all(shard.workers.map((worker) => worker.close()));
  await Promise.all(shard.queues.map((queue) => queue.close()));
}

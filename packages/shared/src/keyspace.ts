import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';

const SLOTS = 16384;

/**
 * Where keys live. On one Redis with one shard, every key starts with
 * QUEUE_PREFIX, as it always has. On Redis Cluster, or with several shards,
 * each shard's keys share a hash tag (`{<prefix>:<shards>.<shard>:<n>}`) so
 * that every multi-key script touches one slot, and the shards' slots are
 * spread over the slot range so that each master of an evenly split cluster
 * holds some. The shard count is part of the tag, so no two layouts share a
 * shard (docs/scaling.md, changing QUEUE_SHARDS). Keys shared by all shards
 * (rate limits, the dead-letter queue, the layout record) use `{<prefix>}` on
 * a cluster and the plain prefix otherwise, whatever the shard count.
 */
export interface Keyspace {
  /** QUEUE_PREFIX itself. */
  prefix: string;
  shardCount: number;
  global: string;
  shards: readonly string[];
  shardOf(phone: string): number;
  /** The key prefix of the phone's shard. */
  shardPrefixOf(phone: string): string;
  /** The metric label of a shard's queue: the queue name, with `@<shard>` when there are several. */
  queueLabel(queue: string, shard: number): string;
}

/** The first tag `<prefix>:<shards>.<shard>:<n>` whose slot falls in the shard's share of the slot range. */
export function shardTag(prefix: string, shard: number, shards: number): string {
  const low = Math.floor((shard * SLOTS) / shards);
  const high = Math.floor(((shard + 1) * SLOTS) / shards);
  for (let n = 0; ; n++) {
    const tag = `${prefix}:${shards}.${shard}:${n}`;
    const slot = calculateSlot(tag);
    if (slot >= low && slot < high) return tag;
  }
}

/** Stable across processes, versions and restarts: one phone always maps to one shard. */
export function shardOfPhone(phone: string, shards: number): number {
  return createHash('sha256').update(phone).digest().readUInt32BE(0) % shards;
}

export function createKeyspace(prefix: string, shards: number, clustered: boolean): Keyspace {
  const tagged = clustered || shards > 1;
  const prefixes = tagged ? Array.from({ length: shards }, (_, shard) => `{${shardTag(prefix, shard, shards)}}`) : [prefix];
  const shardOf = (phone: string) => (shards === 1 ? 0 : shardOfPhone(phone, shards));
  return {
    prefix,
    shardCount: shards,
    global: clustered ? `{${prefix}}` : prefix,
    shards: prefixes,
    shardOf,
    shardPrefixOf: (phone) => prefixes[shardOf(phone)]!,
    queueLabel: (queue, shard) => (shards === 1 ? queue : `${queue}@${shard}`),
  };
}

type KeyspaceConfig = { queuePrefix: string; queueShards: number; redisClusterNodes: string[] | undefined };

export function keyspaceOf(config: KeyspaceConfig): Keyspace {
  return createKeyspace(config.queuePrefix, config.queueShards, (config.redisClusterNodes?.length ?? 0) > 0);
}

/** What ShardLayouts needs from the configuration. */
export function layoutOptionsOf(config: KeyspaceConfig & { dedupeTtlSeconds: number }) {
  return {
    prefix: config.queuePrefix,
    clustered: (config.redisClusterNodes?.length ?? 0) > 0,
    wantedShards: config.queueShards,
    dedupeTtlSeconds: config.dedupeTtlSeconds,
  };
}

/** How long a phone is remembered for first contact. */
export const PHONE_MEMORY_SECONDS = 365 * 24 * 3600;
/** The phone's first-contact record, in its shard (the dispatcher sets it in the same script as its turn check). */
export const phoneMemoryKey = (shardPrefix: string, phone: string): string => `${shardPrefix}:phone:${phone}`;
/**
 * Debounce markers follow the workflow's key, not a shard, so a change of
 * QUEUE_SHARDS does not split them. `debounce-latest`, not the `debounce` of
 * earlier versions, whose marker held a bare job id: a worker of such a
 * version reading the new marker during a rolling upgrade would take every
 * event for superseded and drop its reply; finding none, it sends it.
 */
export const debounceKey = (prefix: string, workflow: string, key: string): string => `${prefix}:debounce-latest:${workflow}:{${key}}`;
/** Set when a later event arrived within the window of the workflow job `jobId`. */
export const debounceSupersededKey = (prefix: string, workflow: string, key: string, jobId: string): string =>
  `${debounceKey(prefix, workflow, key)}:superseded:${jobId}`;

import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { RedisClient } from './redis.js';

/**
 * Resolves once `replicas` replicas hold every write this client made to the
 * node serving `key`, or throws. WAIT counts the writes of its own connection,
 * so on Redis Cluster it goes over the pooled connection to the master of the
 * key's slot: the one that carried the event's writes.
 */
export async function waitForReplicas(redis: RedisClient, key: string, replicas: number, timeoutMs: number): Promise<void> {
  const node = redis instanceof Cluster ? masterOf(redis, key) : redis;
  const acknowledged = Number(await node.call('WAIT', replicas, timeoutMs));
  if (acknowledged < replicas) throw new Error(`only ${acknowledged} of ${replicas} replicas acknowledged within ${timeoutMs} ms`);
}

function masterOf(cluster: Cluster, key: string): Redis {
  const nodeKey = cluster.slots[calculateSlot(key)]?.[0];
  const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
  if (!node) throw new Error(`no known master for slot ${calculateSlot(key)}`);
  return node;
}

import { laneKey, phoneMemoryKey, DRAIN_GRACE_MS, EVENTS_QUEUE, PHONE_MEMORY_SECONDS, type Logger, type RedisClient, type ShardLayouts } from '@replyflow/shared';
import type { Workflow, WorkflowEvent } from '@replyflow/workflow';
import { queueStatsGroups, readQueueStats } from './queue-stats.js';

const DRAIN_CHECK_MS = 2000;
/** waiting, active, delayed: the states of a job that has yet to run (QUEUE_STATES order). */
const UNFINISHED_COLUMNS = [0, 1, 2];

/** A `key` that throws fails its workflow on the event (the dispatcher dead-letters it), so no lane of it matters. */
function keyOrPhone(workflow: Workflow, event: WorkflowEvent): string {
  try {
    return workflow.key?.(event) ?? event.phone;
  } catch {
    return event.phone;
  }
}

/**
 * After a change of QUEUE_SHARDS, whether a phone still has events in the
 * retired layout's shards. Its intake lane is read first: an event leaves it
 * only after its workflow jobs have joined their own lanes, read next.
 * Only events in the current layout's shards wait; the retired ones drain.
 */
export function olderShardsCheck(redis: RedisClient, layouts: ShardLayouts, workflows: readonly Workflow[], shardPrefix: string) {
  return async (event: WorkflowEvent): Promise<boolean> => {
    const retired = layouts.draining()?.keyspace;
    if (!retired || !layouts.isCurrentShard(shardPrefix)) return false;
    const old = retired.shardPrefixOf(event.phone);
    if ((await redis.zcard(laneKey(old, EVENTS_QUEUE, event.phone))) > 0) return true;
    const sizes = await Promise.all(workflows.map((w) => redis.zcard(laneKey(old, w.name, keyOrPhone(w, event)))));
    return sizes.some((size) => size > 0);
  };
}

/**
 * A phone's first-contact record lives in its shard, so after a change of
 * QUEUE_SHARDS a known phone looks new in its new shard: the old shards of
 * every change in the last year are asked too (only for a first contact).
 */
export function rememberedInOlderShards(redis: RedisClient, layouts: ShardLayouts) {
  return async (phone: string): Promise<boolean> => {
    const older = layouts.retired(PHONE_MEMORY_SECONDS);
    if (older.length === 0) return false;
    const found = await Promise.all(older.map((k) => redis.exists(phoneMemoryKey(k.shardPrefixOf(phone), phone))));
    return found.some((n) => n > 0);
  };
}

/**
 * Declares the retired layout drained once every queue of its shards holds
 * nothing left to run, some seconds after the switch (a claim made just before
 * it may still be adding its job). Workers then stop serving its shards and
 * events stop checking them.
 */
export function watchDrain(redis: RedisClient, layouts: ShardLayouts, workflows: readonly string[], clustered: boolean, logger: Logger) {
  let checking = false;
  const check = async () => {
    const draining = layouts.draining();
    if (!draining || Date.now() - draining.retiredAt < DRAIN_GRACE_MS) return;
    const { keyspace } = draining;
    const served = keyspace.shards.map((prefix) => ({ prefix, label: (queue: string) => queue }));
    const groups = queueStatsGroups(served, keyspace.global, workflows, clustered);
    const rows = (await Promise.all(groups.map((group) => readQueueStats(redis, group)))).flat();
    // The last row of the last group is the dead-letter queue, which never drains by itself.
    const left = rows.slice(0, -1).reduce((sum, row) => sum + UNFINISHED_COLUMNS.reduce((n, column) => n + (row[column] ?? 0), 0), 0);
    if (left === 0) await layouts.markDrained(draining.shards);
    else logger.debug({ shards: draining.shards, jobsLeft: left }, 'retired shard layout still draining');
  };
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    check()
      .catch((error: Error) => logger.warn({ err: error.message }, 'could not check the retired shard layout'))
      .finally(() => (checking = false));
  }, DRAIN_CHECK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

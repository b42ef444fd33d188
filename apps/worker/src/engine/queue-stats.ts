import { DEAD_LETTER_QUEUE, EVENTS_QUEUE, QUEUE_STATES, type RedisClient, type workerMetrics } from '@replyflow/shared';

// One round trip for every queue: counts by state and the age of the oldest
// waiting job. BullMQ pushes new jobs on the left, so the oldest is at index -1.
const QUEUE_STATS_SCRIPT = `
local result = {}
for i = 2, #ARGV do
  local p = ARGV[i]
  local age = 0
  local oldest = redis.call('LINDEX', p .. 'wait', -1)
  if oldest then
    local ts = redis.call('HGET', p .. oldest, 'timestamp')
    if ts then age = math.max(0, tonumber(ARGV[1]) - tonumber(ts)) end
  end
  result[#result + 1] = {
    redis.call('LLEN', p .. 'wait') + redis.call('ZCARD', p .. 'prioritized') + redis.call('LLEN', p .. 'paused'),
    redis.call('LLEN', p .. 'active'),
    redis.call('ZCARD', p .. 'delayed'),
    redis.call('ZCARD', p .. 'failed'),
    redis.call('ZCARD', p .. 'completed'),
    age,
  }
end
return result`;

const CACHE_MS = 1000;

export interface QueueStatsGroup {
  /** A key of the group's slot: on Redis Cluster it sends the script to the right node. */
  route: string;
  queues: { label: string; keyPrefix: string }[];
}

/** A shard this worker serves: its key prefix, and the metric label of each of its queues. */
export interface ServedShard {
  prefix: string;
  label: (queue: string) => string;
}

/**
 * On one Redis, every queue in one script: one round trip. On Redis Cluster a
 * script may only touch one slot, so one script per shard (and one for the
 * dead-letter queue), run side by side.
 */
export function queueStatsGroups(served: readonly ServedShard[], global: string, workflows: readonly string[], clustered: boolean): QueueStatsGroup[] {
  const groups = served.map(({ prefix, label }) => ({
    route: `${prefix}:${EVENTS_QUEUE}:meta`,
    queues: [EVENTS_QUEUE, ...workflows].map((name) => ({ label: label(name), keyPrefix: `${prefix}:${name}:` })),
  }));
  groups.push({
    route: `${global}:${DEAD_LETTER_QUEUE}:meta`,
    queues: [{ label: DEAD_LETTER_QUEUE, keyPrefix: `${global}:${DEAD_LETTER_QUEUE}:` }],
  });
  return clustered ? groups : [{ route: groups[0]!.route, queues: groups.flatMap((group) => group.queues) }];
}

/** Counts by state (QUEUE_STATES order) and the oldest waiting job's age in ms, for every queue of a group. */
export function readQueueStats(redis: RedisClient, group: QueueStatsGroup): Promise<number[][]> {
  return redis.eval(QUEUE_STATS_SCRIPT, 1, group.route, Date.now(), ...group.queues.map((q) => q.keyPrefix)) as Promise<number[][]>;
}

/**
 * Refreshes the queue gauges at most once a second, however often Prometheus
 * scrapes, and never on the job path.
 */
export function queueStatsCollector(redis: RedisClient, groups: () => readonly QueueStatsGroup[], metrics: ReturnType<typeof workerMetrics>) {
  let fetchedAt = 0;
  let pending: Promise<void> | undefined;
  const refreshGroup = async (group: QueueStatsGroup) => {
    const rows = await readQueueStats(redis, group);
    rows.forEach((row, index) => {
      const queue = group.queues[index]!.label;
      QUEUE_STATES.forEach((state, column) => metrics.queueJobs.set({ queue, state }, row[column] ?? 0));
      metrics.oldestWaiting.set({ queue }, (row[5] ?? 0) / 1000);
    });
  };
  return async (): Promise<void> => {
    if (Date.now() - fetchedAt < CACHE_MS) return pending;
    fetchedAt = Date.now();
    pending = Promise.all(groups().map(refreshGroup)).then(
      () => {},
      () => {},
    );
    return pending;
  };
}

import { DEAD_LETTER_QUEUE, EVENTS_QUEUE, QUEUE_STATES, type Keyspace, type RedisClient, type workerMetrics } from '@replyflow/shared';

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

/**
 * On one Redis, every queue in one script: one round trip. On Redis Cluster a
 * script may only touch one slot, so one script per shard (and one for the
 * dead-letter queue), run side by side.
 */
export function queueStatsGroups(keyspace: Keyspace, shards: readonly number[], workflows: readonly string[], clustered: boolean): QueueStatsGroup[] {
  const groups = shards.map((shard) => {
    const prefix = keyspace.shards[shard]!;
    return {
      route: `${prefix}:${EVENTS_QUEUE}:meta`,
      queues: [EVENTS_QUEUE, ...workflows].map((name) => ({ label: keyspace.queueLabel(name, shard), keyPrefix: `${prefix}:${name}:` })),
    };
  });
  groups.push({
    route: `${keyspace.global}:${DEAD_LETTER_QUEUE}:meta`,
    queues: [{ label: DEAD_LETTER_QUEUE, keyPrefix: `${keyspace.global}:${DEAD_LETTER_QUEUE}:` }],
  });
  return clustered ? groups : [{ route: groups[0]!.route, queues: groups.flatMap((group) => group.queues) }];
}

/**
 * Refreshes the queue gauges at most once a second, however often Prometheus
 * scrapes, and never on the job path.
 */
export function queueStatsCollector(redis: RedisClient, groups: readonly QueueStatsGroup[], metrics: ReturnType<typeof workerMetrics>) {
  let fetchedAt = 0;
  let pending: Promise<void> | undefined;
  const refreshGroup = async (group: QueueStatsGroup) => {
    const rows = (await redis.eval(QUEUE_STATS_SCRIPT, 1, group.route, Date.now(), ...group.queues.map((q) => q.keyPrefix))) as number[][];
    rows.forEach((row, index) => {
      const queue = group.queues[index]!.label;
      QUEUE_STATES.forEach((state, column) => metrics.queueJobs.set({ queue, state }, row[column] ?? 0));
      metrics.oldestWaiting.set({ queue }, (row[5] ?? 0) / 1000);
    });
  };
  return async (): Promise<void> => {
    if (Date.now() - fetchedAt < CACHE_MS) return pending;
    fetchedAt = Date.now();
    pending = Promise.all(groups.map(refreshGroup)).then(
      () => {},
      () => {},
    );
    return pending;
  };
}

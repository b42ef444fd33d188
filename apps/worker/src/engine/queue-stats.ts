import { QUEUE_STATES, type Redis, type workerMetrics } from '@replyflow/shared';

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

/**
 * Refreshes the queue gauges at most once a second, however often Prometheus
 * scrapes, and never on the job path.
 */
export function queueStatsCollector(redis: Redis, prefix: string, queues: readonly string[], metrics: ReturnType<typeof workerMetrics>) {
  let fetchedAt = 0;
  let pending: Promise<void> | undefined;
  const refresh = async () => {
    const rows = (await redis.eval(QUEUE_STATS_SCRIPT, 0, Date.now(), ...queues.map((q) => `${prefix}:${q}:`))) as number[][];
    rows.forEach((row, index) => {
      const queue = queues[index]!;
      QUEUE_STATES.forEach((state, column) => metrics.queueJobs.set({ queue, state }, row[column] ?? 0));
      metrics.oldestWaiting.set({ queue }, (row[5] ?? 0) / 1000);
    });
  };
  return async (): Promise<void> => {
    if (Date.now() - fetchedAt < CACHE_MS) return pending;
    fetchedAt = Date.now();
    pending = refresh().catch(() => {});
    return pending;
  };
}

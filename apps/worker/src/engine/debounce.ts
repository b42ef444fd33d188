import { debounceKey, debounceSupersededKey, defineScript, type RedisClient } from '@replyflow/shared';

// Names the event's job the latest for its debounce key (a hash: the job and
// its window's end) and, when the event arrived within the window of the job
// named before, marks that job superseded first: a dispatch redone after a
// failure finds the previous job still named. One script: one round trip,
// and no other event of the key (a custom key may span phones) in between.
// KEYS: the marker. ARGV: job id, its event's receivedAt, its window's end,
// the TTL in seconds, the superseded marks' prefix (the job id follows).
const ANNOUNCE_LUA = `
local previous = redis.call('HMGET', KEYS[1], 'job', 'windowEndsAt')
local windowEndsAt = tonumber(previous[2])
if previous[1] and previous[1] ~= ARGV[1] and windowEndsAt and tonumber(ARGV[2]) <= windowEndsAt then
  redis.call('SET', ARGV[5] .. previous[1], '1', 'EX', ARGV[4])
end
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'windowEndsAt', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])`;

export interface DebouncedEvent {
  queuePrefix: string;
  workflow: string;
  debounce: { key: string; ms: number };
  jobId: string;
  receivedAt: number;
}

/**
 * Called by the dispatcher for each debounced event, in the phone's order.
 * The window is decided by when the events arrived, so it does not matter how
 * late the earlier job runs; an event after the window supersedes nothing.
 */
export async function announceDebounced(redis: RedisClient, event: DebouncedEvent, ttlSeconds: number): Promise<void> {
  const { queuePrefix, workflow, debounce, jobId, receivedAt } = event;
  const announce = defineScript(redis, 'replyflowAnnounceDebounced', ANNOUNCE_LUA);
  await announce(
    [debounceKey(queuePrefix, workflow, debounce.key)],
    [jobId, receivedAt, receivedAt + debounce.ms, ttlSeconds, debounceSupersededKey(queuePrefix, workflow, debounce.key, '')],
  );
}

/** Whether a later event arrived within the job's window; a mark lost with Redis's data means no later event is known. */
export async function isSuperseded(redis: RedisClient, queuePrefix: string, workflow: string, key: string, jobId: string): Promise<boolean> {
  return (await redis.exists(debounceSupersededKey(queuePrefix, workflow, key, jobId))) === 1;
}

import { debounceKey, debounceSupersededKey, type RedisClient } from '@replyflow/shared';

/** A debounce key's marker: its latest event's workflow job, and when that job's window ends. */
interface DebounceMarker {
  jobId: string;
  windowEndsAt: number;
}

function parseMarker(value: string | null): DebounceMarker | undefined {
  if (value === null) return undefined;
  try {
    const marker = JSON.parse(value) as Partial<DebounceMarker>;
    return typeof marker.jobId === 'string' && typeof marker.windowEndsAt === 'number' ? (marker as DebounceMarker) : undefined;
  } catch {
    return undefined;
  }
}

export interface DebouncedEvent {
  queuePrefix: string;
  workflow: string;
  debounce: { key: string; ms: number };
  jobId: string;
  receivedAt: number;
}

/**
 * Called by the dispatcher for each debounced event, in the phone's order:
 * names the event's job the latest for its key and, when the event arrived
 * within the window of the job named before, marks that job superseded. The
 * window is decided by when the events arrived, so it does not matter how
 * late the earlier job runs; an event after the window supersedes nothing.
 */
export async function announceDebounced(redis: RedisClient, event: DebouncedEvent, ttlSeconds: number): Promise<void> {
  const { queuePrefix, workflow, debounce, jobId, receivedAt } = event;
  const markerKey = debounceKey(queuePrefix, workflow, debounce.key);
  const previous = parseMarker(await redis.get(markerKey));
  if (previous && previous.jobId !== jobId && receivedAt <= previous.windowEndsAt) {
    // Before the marker moves on: a dispatch redone after a failure here finds the previous job still named.
    await redis.set(debounceSupersededKey(queuePrefix, workflow, debounce.key, previous.jobId), '1', 'EX', ttlSeconds);
  }
  const marker: DebounceMarker = { jobId, windowEndsAt: receivedAt + debounce.ms };
  await redis.set(markerKey, JSON.stringify(marker), 'EX', ttlSeconds);
}

/** Whether a later event arrived within the job's window; a mark lost with Redis's data means no later event is known. */
export async function isSuperseded(redis: RedisClient, queuePrefix: string, workflow: string, key: string, jobId: string): Promise<boolean> {
  return (await redis.exists(debounceSupersededKey(queuePrefix, workflow, key, jobId))) === 1;
}

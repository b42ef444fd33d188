import { doneKey, jobKey, withDeadline, EVENTS_QUEUE, type EventJobData, type Redis } from '@replyflow/shared';
import type { Queue } from 'bullmq';

export type StoreOutcome = 'queued' | 'duplicate';

/** How long a webhook may wait for Redis before it is told to come back later (contract: 1 s). */
const STORE_DEADLINE_MS = 1000;

/**
 * Stores each event once. An id is a duplicate while its job exists (waiting,
 * active, delayed) or, after the job is gone, while the worker's done marker
 * lives. Both are written only with or after the event itself, so a crash can
 * never turn a lost event into a "duplicate". Two deliveries racing past the
 * check both add the same job id, which BullMQ turns into one job.
 */
export class EventStore {
  constructor(
    private readonly redis: Redis,
    private readonly queue: Queue<EventJobData>,
    private readonly prefix: string,
  ) {}

  store(eventId: string, data: EventJobData): Promise<StoreOutcome> {
    return withDeadline(this.storeOnce(eventId, data), STORE_DEADLINE_MS);
  }

  private async storeOnce(eventId: string, data: EventJobData): Promise<StoreOutcome> {
    const known = await this.redis.exists(doneKey(this.prefix, eventId), jobKey(this.prefix, EVENTS_QUEUE, eventId));
    if (known > 0) return 'duplicate';
    await this.queue.add('event', data, { jobId: eventId, removeOnComplete: true, removeOnFail: false });
    return 'queued';
  }
}

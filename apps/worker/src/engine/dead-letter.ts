import { DEAD_LETTER_QUEUE, type DeadLetterJobData, type RedisClient } from '@replyflow/shared';
import { Queue } from 'bullmq';

/**
 * Events that exhausted their attempts, or failed permanently, one entry per
 * event and workflow. Nothing consumes this queue: entries wait for an
 * operator to list and replay them.
 */
export class DeadLetters {
  private readonly queue: Queue<DeadLetterJobData>;

  constructor(redis: RedisClient, prefix: string) {
    this.queue = new Queue<DeadLetterJobData>(DEAD_LETTER_QUEUE, { connection: redis, prefix });
    this.queue.on('error', () => {});
  }

  async add(entry: DeadLetterJobData): Promise<void> {
    // One entry per event and workflow, and per replay (a replay takes a new
    // seq): a replayed job that fails again before the replay has removed the
    // old entry must not find it standing in its place. BullMQ forbids ":" in custom job ids.
    await this.queue.add(entry.workflow, entry, { jobId: `${entry.workflow}.${entry.eventId}.${entry.seq}` });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

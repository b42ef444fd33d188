/**
 * Queue layout. The ingest adds one job per event to `events`, with the event id
 * as job id; workers run workflows on it. An event that exhausts its attempts
 * moves to `dead-letter`, one entry per event and workflow.
 */
export const EVENTS_QUEUE = 'events';
export const DEAD_LETTER_QUEUE = 'dead-letter';

/** What the ingest stores for each event: the payload as received, parsed again by the worker. */
export interface EventJobData {
  receivedAt: number;
  traceId: string;
  payload: Record<string, unknown>;
}

export interface AttemptRecord {
  at: string;
  status: number | null;
  error: string;
  kind: string;
}

export interface DeadLetterJobData extends EventJobData {
  eventId: string;
  workflow: string;
  phone: string;
  history: AttemptRecord[];
}

/**
 * The dedupe record that outlives the job: written by the worker when it has
 * finished with an event (delivered or dead-lettered), so a finished job can be
 * removed at once while redeliveries stay duplicates for DEDUPE_TTL_SECONDS.
 * While the job itself exists, the job key answers for it.
 */
export const doneKey = (prefix: string, eventId: string): string => `${prefix}:done:${eventId}`;

export const jobKey = (prefix: string, queue: string, jobId: string): string => `${prefix}:${queue}:${jobId}`;

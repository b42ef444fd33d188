import { RESERVED_QUEUES, type NotifyerEvent } from '@replyflow/shared';

export { PermanentError, RetryAfterError, TransientError } from '@replyflow/shared';
export type { NotifyerEvent } from '@replyflow/shared';

/** What a workflow sees: the normalized Notifyer message plus what replyflow knows about it. */
export interface WorkflowEvent extends NotifyerEvent {
  /** When the ingest accepted it (ms since the epoch). */
  receivedAt: number;
  /** The first incoming event seen from this phone (phones are remembered for a year). */
  firstContact: boolean;
  /** W3C trace id, kept from the incoming webhook when it carried one. */
  traceId: string;
}

export interface StepTools {
  /**
   * Runs `fn` once per event: its result is stored in Redis, so a retried or
   * restarted job returns the stored result instead of running it again.
   * The result must be JSON-serializable.
   */
  run<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** Parks the job in Redis for `ms`; no timer, no worker slot. Survives restarts. */
  sleep(id: string, ms: number): Promise<void>;
  /** Parks the job in Redis until the time `at` (ms since the epoch). */
  sleepUntil(id: string, at: number): Promise<void>;
}

/** A limit shared by every worker process: at most `perSecond` steps a second, evenly spaced. */
export interface RateLimit {
  name: string;
  perSecond: number;
}

export interface WorkflowDefinition {
  /** Also the BullMQ queue name: lowercase letters, digits and dashes. */
  name: string;
  /** Which events this workflow runs on (default: all). */
  match?: (event: WorkflowEvent) => boolean;
  /**
   * Events with the same key run one at a time, in acceptance order (default:
   * the phone). With QUEUE_SHARDS above 1 this holds within a shard: a key
   * whose phones hash to different shards has a lane in each.
   */
  key?: (event: WorkflowEvent) => string;
  /** Applied to every `step.run` of the workflow. */
  rateLimit?: RateLimit;
  /** Attempts before the dead-letter queue (default MAX_ATTEMPTS). */
  retries?: number;
  /**
   * When several events with the same key match within `ms`, run only the last
   * one, `ms` after it was accepted.
   */
  debounce?: (event: WorkflowEvent) => { key: string; ms: number } | undefined;
  run: (event: WorkflowEvent, step: StepTools) => Promise<unknown>;
}

export type Workflow = Readonly<WorkflowDefinition>;

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

export function defineWorkflow(definition: WorkflowDefinition): Workflow {
  if (!NAME.test(definition.name) || RESERVED_QUEUES.includes(definition.name)) {
    throw new TypeError(`workflow name "${definition.name}": use lowercase letters, digits and dashes (not "events" or "dead-letter")`);
  }
  if (typeof definition.run !== 'function') throw new TypeError(`workflow "${definition.name}": run must be a function`);
  if (definition.retries !== undefined && !(Number.isInteger(definition.retries) && definition.retries > 0)) {
    throw new TypeError(`workflow "${definition.name}": retries must be a positive integer`);
  }
  return Object.freeze({ ...definition });
}

export function isWorkflow(value: unknown): value is Workflow {
  return typeof value === 'object' && value !== null && typeof (value as Workflow).name === 'string' && typeof (value as Workflow).run === 'function';
}

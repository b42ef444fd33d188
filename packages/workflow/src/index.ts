import { RESERVED_QUEUES, type NotifyerEvent } from '@replyflow/shared';

export { PermanentError, RetryAfterError, TransientError } from '@replyflow/shared';
export type { NotifyerEvent } from '@replyflow/shared';

/** What a workflow sees: the normalized Notifyer message plus what replyflow knows about it. */
export interface WorkflowEvent extends NotifyerEvent {
  /** When the ingest accepted it (ms since the epoch). */
  receivedAt: number;
  /** The first incoming event seen from this phone (a phone is remembered for a year after its last incoming event). */
  firstContact: boolean;
  /** W3C trace id, kept from the incoming webhook when it carried one. */
  traceId: string;
}

export interface StepTools {
  /**
   * Runs `fn` once per event: its result is stored in Redis, so a retried or
   * restarted job returns the stored result instead of running it again.
   * The result must be JSON-serializable (or undefined), and `id` used once
   * per run: otherwise the step throws a `PermanentError`.
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
const CALLBACKS = ['match', 'key', 'debounce'] as const;

/**
 * What is wrong with a workflow definition, in one line, or undefined when
 * nothing is. The worker checks every workflow a WORKFLOWS module exports with
 * it, since a module may build them without defineWorkflow.
 */
export function workflowProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a workflow (make it with defineWorkflow)';
  const definition = value as Partial<Record<keyof WorkflowDefinition, unknown>>;
  const { name, rateLimit, retries } = definition;
  if (typeof name !== 'string' || !NAME.test(name)) {
    return `workflow name ${JSON.stringify(name)}: use lowercase letters, digits and dashes, starting with a letter, at most 63`;
  }
  if (RESERVED_QUEUES.includes(name)) return `workflow name "${name}" is taken by replyflow's own queue`;
  const problem = (detail: string) => `workflow "${name}": ${detail}`;
  if (typeof definition.run !== 'function') return problem('run must be a function');
  const notFunction = CALLBACKS.find((callback) => definition[callback] !== undefined && typeof definition[callback] !== 'function');
  if (notFunction) return problem(`${notFunction} must be a function`);
  if (retries !== undefined && !(Number.isInteger(retries) && (retries as number) > 0)) return problem('retries must be a positive integer');
  if (rateLimit !== undefined) {
    const { name: limitName, perSecond } = (rateLimit ?? {}) as Partial<Record<keyof RateLimit, unknown>>;
    if (typeof limitName !== 'string' || limitName === '') return problem('rateLimit.name must be a non-empty string');
    if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0) {
      return problem('rateLimit.perSecond must be a number above 0 (leave rateLimit out for no limit)');
    }
  }
  return undefined;
}

export function defineWorkflow(definition: WorkflowDefinition): Workflow {
  const problem = workflowProblem(definition);
  if (problem) throw new TypeError(problem);
  return Object.freeze({ ...definition });
}

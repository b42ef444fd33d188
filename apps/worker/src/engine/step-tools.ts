import { PermanentError, type RedisClient } from '@replyflow/shared';
import type { StepTools } from '@replyflow/workflow';

/** Thrown by `step.sleep` to park the job until `wakeAt`; the runner moves the job to delayed. */
export class SleepSignal {
  constructor(readonly wakeAt: number) {}
}

export interface StepToolsOptions {
  redis: RedisClient;
  /**
   * A hash of this job's finished steps: `run:<id>` results and `sleep:<id>` wake
   * times; the engine's own steps apart (`engine:<id>`, `engine-sleep:<id>`), so
   * that no id a workflow picks can meet one of them.
   */
  stepsKey: string;
  /** Called before each `step.run` (the workflow's shared rate limit). */
  beforeRun?: (id: string) => Promise<void>;
  /** The step hash, when the caller has already asked for it. */
  stored?: Promise<Record<string, string>>;
}

/** The steps a workflow sees, and `flush` for the attempt that runs it. */
export interface DurableSteps extends StepTools {
  /** Waits for the steps still running, then stores the results held back since the last write (see createStepTools). */
  flush(): Promise<void>;
  /** A step of the engine's own, not the workflow's: stored like `run`'s, without the workflow's `beforeRun`. */
  engine<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** A sleep of the engine's own, not the workflow's: stored like `sleepUntil`'s. */
  engineSleepUntil(id: string, at: number): Promise<void>;
  /** Whether the steps hash may hold anything: it did when loaded, or a result has been stored since. */
  readonly stored: boolean;
}

/**
 * Inngest-style durable steps. The job re-runs the workflow from the top after
 * every sleep or retry; finished steps return their stored result.
 *
 * A step's result is stored just before anything else happens: the next step,
 * a sleep, or `flush`, which the attempt calls before a retry or a dead letter.
 * Steps run side by side (`Promise.all`) may all finish before that write, so
 * every result not yet stored waits for it. An attempt that completes never
 * stores its last results: finishing deletes the hash in the same script that
 * records the workflow done, so that write would only cost a round trip.
 * Either way a step is in flight, and would run again after a crash, until
 * the next write to Redis: the same as when its result was written at once.
 */
export async function createStepTools(options: StepToolsOptions): Promise<DurableSteps> {
  const { redis, stepsKey } = options;
  const memo = new Map(Object.entries(await (options.stored ?? redis.hgetall(stepsKey))));
  const unstored = new Map<string, string>();
  const usedThisRun = new Set<string>();
  const inFlight = new Set<Promise<unknown>>();
  let stored = memo.size > 0;

  const store = async (...fields: string[]) => {
    const results = [...unstored];
    if (results.length === 0 && fields.length === 0) return;
    // Taken before the write: a step finishing during it waits for the next one.
    unstored.clear();
    stored = true;
    try {
      await redis.hset(stepsKey, ...results.flat(), ...fields);
    } catch (error) {
      for (const [field, value] of results) unstored.set(field, value);
      throw error;
    }
  };

  // The second step of an id would find the first one's result and skip its own work.
  const claim = (field: string, id: string) => {
    if (usedThisRun.has(field)) throw new PermanentError(`step id "${id}" is used twice in one run: give each step its own id`);
    usedThisRun.add(field);
  };

  const sleepUntil = async (field: string, id: string, at: number) => {
    claim(field, id);
    let wakeAt = Number(memo.get(field));
    if (!memo.has(field)) {
      wakeAt = at;
      await store(field, String(wakeAt));
      memo.set(field, String(wakeAt));
    }
    if (wakeAt > Date.now()) throw new SleepSignal(wakeAt);
  };

  const runOnce = async <T>(field: string, id: string, fn: () => Promise<T>, beforeRun?: () => Promise<void> | undefined): Promise<T> => {
    claim(field, id);
    const stored = memo.get(field);
    if (stored !== undefined) return (stored === UNDEFINED ? undefined : JSON.parse(stored)) as T;
    // Each await costs a turn of the microtask queue even with nothing to wait for: skipped when so.
    const running = (async () => {
      if (unstored.size > 0) await store();
      if (beforeRun) await beforeRun();
      const result = await fn();
      unstored.set(field, serializeResult(id, result));
      return result;
    })();
    const settled = () => inFlight.delete(running);
    inFlight.add(running);
    running.then(settled, settled);
    return running;
  };

  return {
    run: (id, fn) => runOnce(`run:${id}`, id, fn, options.beforeRun && (() => options.beforeRun!(id))),
    engine: (id, fn) => runOnce(`engine:${id}`, id, fn),
    sleep: (id, ms) => sleepUntil(`sleep:${id}`, id, Date.now() + ms),
    sleepUntil: (id, at) => sleepUntil(`sleep:${id}`, id, at),
    engineSleepUntil: (id, at) => sleepUntil(`engine-sleep:${id}`, id, at),
    // A failure rejects a Promise.all while the steps beside it still run:
    // their results are stored too, so that a retry does not run them again.
    flush: async () => {
      await Promise.allSettled(inFlight);
      await store();
    },
    get stored() {
      return stored;
    },
  };
}

// JSON has no undefined: it is stored as the empty string, which no JSON text is.
const UNDEFINED = '';

/**
 * A result that cannot be stored fails the attempt for good: its step has
 * done its work, and a retry would only do it again and fail the same way.
 */
function serializeResult(id: string, result: unknown): string {
  if (result === undefined) return UNDEFINED;
  let serialized: string | undefined;
  try {
    serialized = JSON.stringify(result);
  } catch (error) {
    throw unstorableResult(id, (error as Error).message);
  }
  // A function or a symbol has no JSON text at all.
  if (serialized === undefined) throw unstorableResult(id, `a ${typeof result}`);
  return serialized;
}

const unstorableResult = (id: string, reason: string) =>
  new PermanentError(`step "${id}" ran, but its result cannot be stored: step results must be JSON-serializable (${reason})`);

import type { RedisClient } from '@replyflow/shared';
import type { StepTools } from '@replyflow/workflow';

/** Thrown by `step.sleep` to park the job until `wakeAt`; the runner moves the job to delayed. */
export class SleepSignal {
  constructor(readonly wakeAt: number) {}
}

export interface StepToolsOptions {
  redis: RedisClient;
  /** A hash of this job's finished steps: `run:<id>` results, `sleep:<id>` wake times. */
  stepsKey: string;
  /** Called before each `step.run` (the workflow's shared rate limit). */
  beforeRun?: (id: string) => Promise<void>;
  /** The step hash, when the caller has already asked for it. */
  stored?: Promise<Record<string, string>>;
}

/**
 * Inngest-style durable steps. The job re-runs the workflow from the top after
 * every sleep or retry; finished steps return their stored result.
 */
export async function createStepTools(options: StepToolsOptions): Promise<StepTools> {
  const { redis, stepsKey } = options;
  const memo = new Map(Object.entries(await (options.stored ?? redis.hgetall(stepsKey))));

  const sleepUntil = async (id: string, at: number) => {
    const field = `sleep:${id}`;
    let wakeAt = Number(memo.get(field));
    if (!memo.has(field)) {
      wakeAt = at;
      await redis.hset(stepsKey, field, String(wakeAt));
      memo.set(field, String(wakeAt));
    }
    if (wakeAt > Date.now()) throw new SleepSignal(wakeAt);
  };

  return {
    async run<T>(id: string, fn: () => Promise<T>): Promise<T> {
      const field = `run:${id}`;
      const stored = memo.get(field);
      if (stored !== undefined) return JSON.parse(stored) as T;
      await options.beforeRun?.(id);
      const result = await fn();
      const serialized = JSON.stringify(result ?? null);
      await redis.hset(stepsKey, field, serialized);
      memo.set(field, serialized);
      return result;
    },
    sleep: (id, ms) => sleepUntil(id, Date.now() + ms),
    sleepUntil,
  };
}

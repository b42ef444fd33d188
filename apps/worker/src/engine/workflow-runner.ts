import { doneKey, parseAcceptedPayload, type AttemptRecord, type WorkflowJobData } from '@replyflow/shared';
import type { Workflow } from '@replyflow/workflow';
import { DelayedError, type Job, type Queue } from 'bullmq';
import { attemptRecord, createAttempts, stepsKey, type AttemptDeps, type Settlement } from './attempt.js';
import type { DeadLetters } from './dead-letter.js';
import { finishedStepsFate, type Lanes, type StepsFate } from './lanes.js';
import { workflowEventOf } from './workflow-event.js';

export interface RunnerDeps extends AttemptDeps {
  dedupeTtlSeconds: number;
  lanes: Lanes;
  deadLetters: DeadLetters;
}

export type WorkflowJob = Job<WorkflowJobData>;

/**
 * Runs one workflow's jobs: waits for the job's turn in its lane, runs the
 * workflow with durable steps, and on failure retries with backoff (the same
 * job moved back to `delayed`, its history in its data) or dead-letters it.
 * Sleeps and retries keep the lane; finishing (done or dead-lettered) leaves it.
 */
export function createWorkflowRunner(workflow: Workflow, queue: Queue<WorkflowJobData>, deps: RunnerDeps) {
  const { redis, metrics, lanes } = deps;
  const name = workflow.name;
  const runAttempt = createAttempts(workflow, deps);

  // Steps are kept for a dead-lettered event, so a replay resumes after its last finished step.
  const finish = async (job: WorkflowJob, token: string | undefined, steps: StepsFate) => {
    await lanes.finish(job, token, queue, doneKey(deps.prefix, job.data.eventId), deps.dedupeTtlSeconds, [
      { queue, lane: job.data.lane, member: job.id!, field: name, stepsKey: stepsKey(deps.prefix, job.id!), steps },
    ]);
  };

  const deadLetter = async (job: WorkflowJob, token: string | undefined, phone: string, history: AttemptRecord[]) => {
    await deps.deadLetters.add({ ...job.data, phone, history });
    await finish(job, token, 'keep');
  };

  const settlementOf = (job: WorkflowJob, token: string | undefined, phone: string): Settlement => ({
    finished: (stepsStored) => finish(job, token, finishedStepsFate(stepsStored)),
    deadLettered: (history) => deadLetter(job, token, phone, history),
    sleeping: (wakeAt) => job.moveToDelayed(wakeAt, token),
    retrying: async (history, delayMs) => {
      const retryAt = Date.now() + delayMs;
      await job.updateData({ ...job.data, history, retryAt });
      await job.moveToDelayed(retryAt, token);
    },
  });

  const process = async (job: WorkflowJob, token?: string): Promise<void> => {
    const parsed = parseAcceptedPayload(job.data.payload, job.data.eventId);
    if (!parsed.ok) throw new Error(`job ${job.id} holds an invalid payload`);
    // Asked for together: one round trip when the job runs at once.
    const finished = redis.hexists(doneKey(deps.prefix, job.data.eventId), name);
    const stored = redis.hgetall(stepsKey(deps.prefix, job.id!));
    stored.catch(() => {}); // a parked or finished job never reads it
    // A worker that died between finishing and BullMQ's completion leaves the
    // job to run again: its outcome is recorded and its lane left, so it only completes.
    if ((await finished) === 1) return;
    if (job.data.retryAt && job.data.retryAt > Date.now()) {
      await job.moveToDelayed(job.data.retryAt, token);
      throw new DelayedError();
    }
    await lanes.takeTurn(job, token, queue, job.data.lane);
    const event = workflowEventOf(parsed.event, job.data.receivedAt, job.data.firstContact, job.data.traceId);
    const outcome = await runAttempt(event, job.id!, job.data.history ?? [], stored, settlementOf(job, token, event.phone));
    if (outcome === 'waiting') throw new DelayedError();
  };

  /**
   * BullMQ fails a job itself when its workers keep dying on it (stalled too
   * often): that is an exhausted event too, so it goes to the dead-letter queue.
   */
  const onFailed = async (job: WorkflowJob, error: Error): Promise<void> => {
    const parsed = parseAcceptedPayload(job.data.payload, job.data.eventId);
    const phone = parsed.ok ? parsed.event.phone : '';
    const record = { ...attemptRecord(error), kind: 'stalled' };
    await deadLetter(job, undefined, phone, [...(job.data.history ?? []), record]);
    metrics.jobs.inc({ workflow: name, outcome: 'dead_lettered' });
    await job.remove().catch(() => {});
    deps.logger.warn({ eventId: job.data.eventId, workflow: name, err: error.message }, 'job failed outside its workflow, dead-lettered');
  };

  return { process, onFailed, runAttempt };
}

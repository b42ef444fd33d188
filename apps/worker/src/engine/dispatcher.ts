import {
  addWorkflowJob,
  defineBatchedScript,
  doneKey,
  seqKey,
  PHONE_MEMORY_SECONDS,
  jobKey,
  laneKey,
  parseAcceptedPayload,
  workflowJobId,
  EVENTS_QUEUE,
  type EventJobData,
  type Logger,
  type NotifyerEvent,
  type RedisClient,
  type WorkflowJobData,
  type workerMetrics,
} from '@replyflow/shared';
import type { Workflow, WorkflowEvent } from '@replyflow/workflow';
import { DelayedError, type Job, type Queue } from 'bullmq';
import { attemptRecord, stepsKey, type RunAttempt } from './attempt.js';
import { backoffDelayMs } from './backoff.js';
import { announceDebounced } from './debounce.js';
import type { DeadLetters } from './dead-letter.js';
import { workflowEventOf } from './workflow-event.js';
import { carriedTurn, completionOf, type Completion } from './completion.js';
import { finishedStepsFate, joinAnswerOf, type JoinAnswer, type LaneExit, type LaneSeat, type Lanes, type StepsFate } from './lanes.js';
import { TURN_SCRIPT, type Turn } from './turn.js';
import { routeOf, type WorkflowRoute } from './workflow-route.js';

/** How often an event re-checks the phone's old shards after a change of QUEUE_SHARDS. */
const OLDER_SHARDS_RECHECK_MS = 250;

export interface DispatcherDeps {
  redis: RedisClient;
  /** The shard's key prefix. */
  prefix: string;
  /** QUEUE_PREFIX: for keys that follow a workflow's key rather than a shard. */
  queuePrefix: string;
  /** After a change of QUEUE_SHARDS (layout-drain.ts): whether the phone still has events in its old shard. */
  olderShardsBusy: (event: WorkflowEvent) => Promise<boolean>;
  /** After a change of QUEUE_SHARDS: whether an old shard remembers the phone, which is then no first contact. */
  rememberedInOlderShards: (phone: string) => Promise<boolean>;
  dedupeTtlSeconds: number;
  backoffBaseMs: number;
  lanes: Lanes;
  deadLetters: DeadLetters;
  metrics: ReturnType<typeof workerMetrics>;
  logger: Logger;
}

interface InlineRun {
  target: DispatchTarget;
  data: WorkflowJobData;
  /** The steps the join found stored. */
  stored: Record<string, string>;
}

export interface DispatchTarget {
  workflow: Workflow;
  queue: Queue<WorkflowJobData>;
  /** The workflow runner's attempt, for a first attempt run inline. */
  runAttempt: RunAttempt;
}

/**
 * Turns each accepted event, in its phone's acceptance order, into work for
 * every matching workflow: when the workflow's lane is free, its first attempt
 * runs right here; otherwise, or when that attempt has to wait (a sleep, a
 * retry, a debounce), a workflow job carries it on. Every step is idempotent,
 * so a dispatch interrupted by a crash is redone whole (docs/design.md).
 */
export function createDispatcher(targets: readonly DispatchTarget[], eventsQueue: Queue<EventJobData>, deps: DispatcherDeps) {
  const { redis, lanes, prefix } = deps;
  const turnScript = defineBatchedScript(redis, 'replyflowDispatchTurns', TURN_SCRIPT);
  const turnShared = { keys: [seqKey(prefix)], args: [prefix, PHONE_MEMORY_SECONDS] };
  // Workflows that take every event in the phone's order (no match, no key of
  // their own) join their lanes in the turn's round trip: one call less per
  // event. Not with a debounce: user code that may fail before the lane is joined.
  const joinEarly = targets.filter(({ workflow }) => !workflow.match && !workflow.key && !workflow.debounce);
  const joinedByTurn = joinEarly.map(({ workflow }) => workflow.name);

  // Leaving the intake lane before the dispatch ends: field '' records
  // nothing (the completion records the event dispatched). Nothing stores
  // steps under an event job's id.
  const earlyIntakeExitOf = (job: Job<EventJobData>): LaneExit => ({
    queue: eventsQueue,
    lane: laneKey(prefix, EVENTS_QUEUE, job.data.phone),
    member: job.id!,
    field: '',
    stepsKey: stepsKey(prefix, job.id!),
    steps: 'none',
  });

  const seatFor = (workflow: Workflow, eventId: string, orderKey: string, seq: number): LaneSeat => {
    const jobId = workflowJobId(workflow.name, eventId);
    return {
      lane: laneKey(prefix, workflow.name, orderKey),
      member: jobId,
      seq,
      jobKey: jobKey(prefix, workflow.name, jobId),
      doneKey: doneKey(prefix, eventId),
      field: workflow.name,
      stepsKey: stepsKey(prefix, jobId),
    };
  };

  const jobDataOf = (job: Job<EventJobData>, event: WorkflowEvent, workflow: Workflow, lane: string): WorkflowJobData => ({
    eventId: event.id,
    workflow: workflow.name,
    receivedAt: job.data.receivedAt,
    traceId: job.data.traceId,
    payload: job.data.payload,
    seq: job.data.seq,
    lane,
    firstContact: event.firstContact,
  });

  /**
   * A callback of the workflow failed on the event (routeOf): that is the
   * workflow's permanent failure on this event, not the dispatch's, which
   * goes on for the other workflows. Retrying the dispatch instead held back
   * every workflow of the phone for good. A redone dispatch fails the same way
   * and adds the same entry (its id is fixed).
   */
  const deadLetterUnrouted = async (job: Job<EventJobData>, event: WorkflowEvent, workflow: Workflow, error: unknown) => {
    const record = attemptRecord(error);
    // The phone's lane, as `key` may be what threw: a replay is ordered there.
    const lane = laneKey(prefix, workflow.name, event.phone);
    await deps.deadLetters.add({ ...jobDataOf(job, event, workflow, lane), phone: event.phone, history: [record] });
    deps.metrics.jobs.inc({ workflow: workflow.name, outcome: 'dead_lettered' });
    deps.logger.warn({ eventId: event.id, workflow: workflow.name, error: record.error, kind: record.kind }, 'workflow failed, moved to the dead-letter queue');
  };

  /**
   * Undefined when the event was dispatched already; otherwise, once it heads
   * its intake lane (parking it until then), whether it is the phone's first
   * contact and the answers of the `early` lanes it joined. A job BullMQ
   * handed on as it completed the one before comes with its turn taken
   * (completion.ts); any other takes it here.
   */
  const takeTurn = async (job: Job<EventJobData>, token: string | undefined, lane: string, event: NotifyerEvent, early: LaneSeat[]) => {
    const readTurn = async () => {
      // The script makes each seat's keys as seatFor does.
      const args = [job.id!, event.phone, event.direction === 'incoming' ? '1' : '0', String(job.data.seq)];
      for (const seat of early) args.push(seat.field);
      return (await turnScript(prefix, [], args, turnShared)) as Turn;
    };
    let turn = carriedTurn(job) ?? (await readTurn());
    if (turn[0] === 'wait') {
      await lanes.takeTurn(job, token, eventsQueue, lane);
      turn = await readTurn();
    }
    if (turn[0] === 'dispatched') return undefined;
    return { firstContact: turn[1] === 1, joined: turn.slice(2).map(joinAnswerOf) };
  };

  /**
   * Runs the first attempts of the workflows whose lanes are free, side by
   * side, so that no workflow waits for another; what has to wait goes on in
   * a workflow job. An attempt that settles while others still run leaves its
   * lane at once, for the phone's next event of that workflow; the last one's
   * lane is returned, to leave with the intake lane.
   */
  const runInline = async (event: WorkflowEvent, runs: readonly InlineRun[], leaveNow: (exits: LaneExit[]) => Promise<void>): Promise<LaneExit[]> => {
    const exits: LaneExit[] = [];
    let running = runs.length;
    const attempt = async ({ target: { workflow, queue, runAttempt }, data, stored }: InlineRun) => {
      const jobId = workflowJobId(workflow.name, event.id);
      const leave = async (steps: StepsFate) => {
        const exit: LaneExit = { queue, lane: data.lane, member: jobId, field: workflow.name, stepsKey: stepsKey(prefix, jobId), steps };
        if (running === 1) exits.push(exit);
        else await leaveNow([exit]);
      };
      await runAttempt(
        event,
        jobId,
        [],
        Promise.resolve(stored),
        {
          // The last result is never stored: leaving deletes it, or records the workflow done.
          finished: (stepsStored) => leave(finishedStepsFate(stepsStored)),
          deadLettered: async (history) => {
            await deps.deadLetters.add({ ...data, phone: event.phone, history });
            await leave('keep');
          },
          sleeping: (wakeAt) => addWorkflowJob(queue, data, wakeAt - Date.now()),
          retrying: (history, delayMs) => addWorkflowJob(queue, { ...data, history, retryAt: Date.now() + delayMs }, delayMs),
        },
        true,
      ).finally(() => running--);
    };
    const settled = await Promise.allSettled(runs.map(attempt));
    const failure = settled.find((result) => result.status === 'rejected');
    if (failure) {
      // The dispatch is redone whole: what settled is recorded first, or the redo would run it again.
      if (exits.length > 0) await leaveNow(exits);
      throw failure.reason;
    }
    return exits;
  };

  /**
   * Returns the lanes of the workflows that finished inline, to leave with the
   * intake lane. `joined`: the seats taken in the turn, with their answers.
   */
  const dispatch = async (
    job: Job<EventJobData>,
    leave: (exits: LaneExit[]) => Promise<void>,
    event: WorkflowEvent,
    joined: ReadonlyMap<DispatchTarget, { seat: LaneSeat; answer: JoinAnswer }>,
  ): Promise<LaneExit[]> => {
    const inline: InlineRun[] = [];
    for (const target of targets) {
      const { workflow, queue } = target;
      let route: WorkflowRoute | undefined;
      try {
        route = routeOf(workflow, event);
      } catch (error) {
        await deadLetterUnrouted(job, event, workflow, error);
        continue;
      }
      if (!route) continue;
      const early = joined.get(target);
      const seat = early?.seat ?? seatFor(workflow, event.id, route.key, job.data.seq);
      const answer = early?.answer ?? (await lanes.join(seat));
      if (answer.state === 'finished' || answer.state === 'queued') continue;
      const data = jobDataOf(job, event, workflow, seat.lane);
      const { debounce } = route;
      if (debounce) {
        // Kept as long as an event is remembered, not just the window: a job may
        // run long after it (a long Retry-After, workers down, a replay).
        const ttlSeconds = Math.max(deps.dedupeTtlSeconds, Math.ceil(debounce.ms / 1000));
        await announceDebounced(redis, { queuePrefix: deps.queuePrefix, workflow: workflow.name, debounce, jobId: seat.member, receivedAt: event.receivedAt }, ttlSeconds);
      }
      // A debounced event always waits for later ones: no use trying it now.
      if (answer.state === 'head' && !debounce) inline.push({ target, data, stored: answer.stored });
      else await addWorkflowJob(queue, data);
    }
    if (inline.length === 0) return [];
    // Every lane is joined: from here each workflow's own lane keeps the
    // phone's order, and the phone's next event need not wait for these
    // attempts, which would make one workflow wait for another.
    if (targets.length > 1) await leave([earlyIntakeExitOf(job)]);
    return runInline(event, inline, leave);
  };

  return async (job: Job<EventJobData>, token?: string): Promise<Completion> => {
    const lane = laneKey(prefix, EVENTS_QUEUE, job.data.phone);
    const done = doneKey(prefix, job.id!);
    // Leaves lanes before the dispatch ends, which only the lock's holder may do.
    const leave = async (exits: LaneExit[]) => {
      if (!(await lanes.finish(job, token, eventsQueue, done, deps.dedupeTtlSeconds, exits))) throw new Error(`job ${job.id} lost its lock`);
    };
    try {
      const parsed = parseAcceptedPayload(job.data.payload, job.id!);
      if (!parsed.ok) throw new Error(`job ${job.id} holds an invalid payload`);
      const early = joinEarly.map(({ workflow }) => seatFor(workflow, job.id!, parsed.event.phone, job.data.seq));
      const turn = await takeTurn(job, token, lane, parsed.event, early);
      let inlineExits: LaneExit[] = [];
      if (turn) {
        const event = workflowEventOf(parsed.event, job.data.receivedAt, turn.firstContact, job.data.traceId);
        if (await deps.olderShardsBusy(event)) {
          // Still the head of its lane, so the phone's later events wait behind it.
          await job.moveToDelayed(Date.now() + OLDER_SHARDS_RECHECK_MS, token);
          throw new DelayedError();
        }
        if (event.firstContact && (await deps.rememberedInOlderShards(event.phone))) event.firstContact = false;
        inlineExits = await dispatch(job, leave, event, new Map(joinEarly.map((target, i) => [target, { seat: early[i]!, answer: turn.joined[i]! }])));
      }
      // Also for a second job of an already dispatched event (two deliveries
      // racing at the ingest). BullMQ's completion leaves the lanes (completion.ts).
      return completionOf({ prefix, dedupeTtlSeconds: deps.dedupeTtlSeconds, phone: job.data.phone, joinedByTurn, workflowExits: inlineExits });
    } catch (error) {
      if (error instanceof DelayedError) throw error;
      // Dispatch fails only when Redis does: try again, never give the event up.
      const attempt = job.attemptsStarted;
      deps.logger.warn({ eventId: job.id, err: (error as Error).message }, 'dispatch failed, retrying');
      await job.moveToDelayed(Date.now() + backoffDelayMs(Math.min(attempt, 10), deps.backoffBaseMs || 100), token);
      throw new DelayedError();
    }
  };
}

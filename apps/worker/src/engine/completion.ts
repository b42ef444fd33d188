import { doneKey, jobKey, laneKey, luaKey, seqKey, workflowJobId, DISPATCHED_FIELD, EVENTS_QUEUE, PHONE_MEMORY_SECONDS, type RedisClient } from '@replyflow/shared';
import type { Job } from 'bullmq';
import { createRequire } from 'node:module';
import { stepsKey } from './attempt.js';
import { LEAVE_LANES_LUA, type LaneExit } from './lanes.js';
import { DISPATCH_TURN_LUA, type Turn } from './turn.js';

// BullMQ's own scripts, as the installed version ships them (completion.test.ts
// runs BullMQ's completions through them, so an upgrade that moves them fails
// there): the one that completes a job and hands the worker its next one, and
// the one that promotes a delayed job.
const require = createRequire(import.meta.url);
const { version } = require('bullmq/dist/cjs/version.js') as { version: string };
type BullScript = { content: string; keys: number };
const { moveToFinished } = require('bullmq/dist/cjs/scripts/moveToFinished-14.js') as { moveToFinished: BullScript };
const { promote } = require('bullmq/dist/cjs/scripts/promote-9.js') as { promote: BullScript };

// BullMQ's completion, then the dispatcher's finishing and the next event's
// turn, in one script: an event's own round trips are then BullMQ's alone,
// the finishing can no longer be separated from the completion by a crash,
// and the next job arrives knowing its turn. The
// dispatcher asks for this by returning a Completion: its JSON is BullMQ's
// return value argument (ARGV[4]), replaced by 'null' before BullMQ stores or
// publishes it. Any other completion or failure is BullMQ's unchanged.
// The finishing is LEAVE_LANES_LUA's, run once BullMQ's part has succeeded,
// which checked and released the job's lock: a worker that lost its lock
// changes nothing, as before. The heads it reports as parked are promoted
// here, by BullMQ's script; since BullMQ fetched first, the worker's next job
// is not one of them, and a promoted head waits for the next fetch. The turn
// is DISPATCH_TURN_LUA's, for the job BullMQ fetched, from the seq, phone and
// direction at the start of its data (event-store.ts) and from its count of
// runs; it travels back as that job's `progress`, which event jobs never
// store. A job queued by an older ingest, or fetched any other way, takes its
// turn itself.
const COMPLETION_LUA = `
local function bullmqMoveToFinished(KEYS, ARGV)
${moveToFinished.content}
end
local function bullmqPromote(KEYS, ARGV)
${promote.content}
end
${LEAVE_LANES_LUA}
${DISPATCH_TURN_LUA}
-- The finishing of the dispatch of event \`id\`: its intake lane, recording
-- it dispatched, and the lane of each workflow it finished inline (name,
-- lane, what becomes of its steps), through LEAVE_LANES_LUA without its lock
-- check (BullMQ's part made it); then the parked heads are promoted.
local function finishDispatch(P, id, rf, early)
  local phone = rf[3]
  local keys = {'', ${luaKey(doneKey, 'P', 'id')}, ${luaKey((p: string, key: string) => laneKey(p, EVENTS_QUEUE, key), 'P', 'phone')}, '', ${luaKey(jobKey, 'P', `'${EVENTS_QUEUE}'`, `'delayed'`)}}
  local args = {'', rf[2], id, '${DISPATCHED_FIELD}', 'none'}
  local queues = {${luaKey(jobKey, 'P', `'${EVENTS_QUEUE}'`, `''`)}}
  for i = 5 + early, #rf, 3 do
    local workflow = rf[i]
    local member = ${luaKey(workflowJobId, 'workflow', 'id')}
    keys[#keys + 1] = rf[i + 1]
    keys[#keys + 1] = ${luaKey(stepsKey, 'P', 'member')}
    keys[#keys + 1] = ${luaKey(jobKey, 'P', 'workflow', `'delayed'`)}
    args[#args + 1] = member
    args[#args + 1] = workflow
    args[#args + 1] = rf[i + 2]
    queues[#queues + 1] = ${luaKey(jobKey, 'P', 'workflow', `''`)}
  end
  local heads = leaveLanes(keys, args)
  for i = 1, #heads do
    local q, head = queues[i], heads[i]
    if head ~= '' then
      bullmqPromote({q .. 'delayed', q .. 'wait', q .. 'paused', q .. 'meta', q .. 'prioritized', q .. 'active', q .. 'pc', q .. 'events', q .. 'marker'}, {q, head})
    end
  end
end
-- The turn of the job BullMQ fetched, from its data and count of runs,
-- added to its fields as \`progress\`.
local function takeNextTurn(next, P, rf, early)
  local fields, data, started = next[1]
  for i = 1, #fields, 2 do
    if fields[i] == 'data' then data = fields[i + 1] elseif fields[i] == 'ats' then started = fields[i + 1] end
  end
  local seq, phone, incoming = string.match(data or '', '^{"seq":(%d+),"phone":"([^"\\\\]*)","incoming":(%a+),')
  if not seq then return end
  local args = {next[2], phone, incoming == 'true' and '1' or '0', seq}
  for i = 5, 4 + early do args[#args + 1] = rf[i] end
  args[#args + 1] = P
  args[#args + 1] = '${PHONE_MEMORY_SECONDS}'
  fields[#fields + 1] = 'progress'
  fields[#fields + 1] = cjson.encode({rfTurn = dispatchTurn({${luaKey(seqKey, 'P')}}, args, started == '1')})
end
local rf
if ARGV[5] == 'completed' and string.sub(ARGV[4], 1, 6) == '{"rf":' then
  rf = cjson.decode(ARGV[4]).rf
  ARGV[4] = 'null'
end
local answer = bullmqMoveToFinished(KEYS, ARGV)
if rf and (type(answer) == 'table' or answer >= 0) then
  local P, early = rf[1], tonumber(rf[4])
  finishDispatch(P, ARGV[1], rf, early)
  if type(answer) == 'table' and type(answer[1]) == 'table' then takeNextTurn(answer, P, rf, early) end
end
return answer`;

/**
 * Puts the completion script in place of BullMQ's on `connection`, before any
 * Worker or Queue loads BullMQ's (BullMQ defines a script only where none of
 * that name is). Every queue on the connection runs it; only a Completion
 * changes what it does.
 */
export function installCompletion(connection: RedisClient): void {
  connection.defineCommand(`moveToFinished:${version}`, { numberOfKeys: moveToFinished.keys, lua: COMPLETION_LUA });
}

/** What the dispatcher returns to BullMQ for the completion script; see COMPLETION_LUA. */
export interface Completion {
  /**
   * The shard's prefix, how long a done record lives, the event's phone, the
   * number of workflows whose lanes a turn joins and their names, then for
   * each workflow finished inline its name, lane and StepsFate. Short: the
   * script makes every key (luaKey), as JSON of a few strings costs Redis
   * less to decode than of every key.
   */
  rf: string[];
}

export interface DispatchFinish {
  prefix: string;
  dedupeTtlSeconds: number;
  phone: string;
  /** The workflows whose lanes a turn joins (the dispatcher's early seats). */
  joinedByTurn: readonly string[];
  /** The lanes of the workflows finished inline. */
  workflowExits: readonly LaneExit[];
}

export function completionOf(finish: DispatchFinish): Completion {
  const rf = [finish.prefix, String(finish.dedupeTtlSeconds), finish.phone, String(finish.joinedByTurn.length), ...finish.joinedByTurn];
  for (const exit of finish.workflowExits) rf.push(exit.field, exit.lane, exit.steps);
  return { rf };
}

/** The turn the completion script took for `job`, if it did. */
export function carriedTurn(job: Job): Turn | undefined {
  const progress = job.progress as { rfTurn?: Turn } | number;
  return typeof progress === 'object' && progress !== null ? progress.rfTurn : undefined;
}

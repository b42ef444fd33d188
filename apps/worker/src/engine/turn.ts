import { doneKey, jobKey, laneKey, luaKey, phoneMemoryKey, workflowJobId, DISPATCHED_FIELD, EVENTS_QUEUE } from '@replyflow/shared';
import { stepsKey } from './attempt.js';
import { JOIN_LANE_LUA } from './lanes.js';

// The dispatcher's first round trip, for the common case of an event that
// heads its intake lane: 'dispatched' (the done record says so), 'wait' (not
// the head: Lanes.takeTurn decides), or 'head' (also for an event no longer in
// the lane: an earlier run of its job released it, see dispatch) and whether this is the phone's
// first contact, then the answers of the workflow lanes it joined on the way
// (joinLane, lanes.ts). The done record is read once, for the event and every
// lane. The first-contact key keeps the first event's id, so a redone dispatch
// agrees; it is read only at the head, in acceptance order. GETEX renews its
// expiry as it reads it (a phone is remembered for PHONE_MEMORY_SECONDS after
// its last incoming event, not its first): one command for a phone seen
// before, where SET NX GET, which leaves a found key's expiry alone, took an
// EXPIRE after it.
// The script makes its keys from the event id, the phone and the workflows'
// names (luaKey), rather than being sent them: a batch's JSON was mostly keys.
// KEYS: the shard's sequence (shared by the group: it routes the call in a
// cluster). ARGV: event id, phone, 1 when the event is incoming, its
// sequence, the name of each workflow whose lane to join, then (shared) the
// shard's prefix and how long a phone is remembered.
// The same function serves the dispatcher's batched script and BullMQ's
// completion, which takes the turn of the job it hands on (completion.ts).
// `firstRun`: the job's first run, which finds no done record: the ingest
// adds no job for an event that has one (enqueue-script.ts), and only the
// event's own job writes one. The completion knows; the record is not read.
export const DISPATCH_TURN_LUA = `${JOIN_LANE_LUA}
local function dispatchTurn(KEYS, ARGV, firstRun)
  local id, phone, seq = ARGV[1], ARGV[2], ARGV[4]
  local P, phoneTtl = ARGV[#ARGV - 1], ARGV[#ARGV]
  local seats = #ARGV - 6
  local fields, done = {'${DISPATCHED_FIELD}'}, {false}
  for i = 1, seats do fields[i + 1], done[i + 1] = ARGV[4 + i], false end
  if not firstRun then done = redis.call('HMGET', ${luaKey(doneKey, 'P', 'id')}, unpack(fields)) end
  if done[1] then return {'dispatched'} end
  local intake = ${luaKey((p: string, key: string) => laneKey(p, EVENTS_QUEUE, key), 'P', 'phone')}
  if redis.call('ZRANGE', intake, 0, 0)[1] ~= id and redis.call('ZSCORE', intake, id) then return {'wait'} end
  local turn = {'head', 0}
  if ARGV[3] == '1' then
    local memory = ${luaKey(phoneMemoryKey, 'P', 'phone')}
    local previous = redis.call('GETEX', memory, 'EX', phoneTtl)
    if not previous then redis.call('SET', memory, id, 'EX', phoneTtl) end
    if not previous or previous == id then turn[2] = 1 end
  end
  for i = 1, seats do
    local workflow = ARGV[4 + i]
    local member = ${luaKey(workflowJobId, 'workflow', 'id')}
    local lane, job, steps = ${luaKey(laneKey, 'P', 'workflow', 'phone')}, ${luaKey(jobKey, 'P', 'workflow', 'member')}, ${luaKey(stepsKey, 'P', 'member')}
    turn[2 + i] = joinLane(done[i + 1] ~= false, lane, job, steps, member, seq, KEYS[1])
  end
  return turn
end`;

export const TURN_SCRIPT = `${DISPATCH_TURN_LUA}
return dispatchTurn(KEYS, ARGV)`;

/** The turn's answer: 'dispatched', 'wait', or 'head', first contact (1 or 0), then each joined lane's answer (joinAnswerOf). */
export type Turn = [string, number?, ...unknown[]];

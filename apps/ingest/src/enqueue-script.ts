import { createRequire } from 'node:module';
import { defineScript, doneKey, laneKey, seqKey, shardOwnerKey, EVENTS_QUEUE, type EventJobData, type RedisClient } from '@replyflow/shared';
import { Job, QueueKeys } from 'bullmq';
import { Packr } from 'msgpackr';

export const DUPLICATE = -1;
export const FENCED = -2;

// BullMQ's own script for adding a job, as the installed version ships it:
// the job it writes is exactly what Queue.add writes (enqueue-script.test.ts
// compares the two), so a BullMQ upgrade that changes it fails that test.
const require = createRequire(import.meta.url);
const { addStandardJob } = require('bullmq/dist/cjs/scripts/addStandardJob-9.js') as { addStandardJob: { content: string; keys: number } };
// BullMQ packs its script arguments with these settings (classes/scripts.js).
const packer = new Packr({ useRecords: false, encodeUndefinedAsNil: true });

// Runs before BullMQ's script, in the same call, so that checking for a
// duplicate, taking the phone's next place and adding the job are one atomic
// step and one round trip. The shard must belong to our shard count
// (layouts.ts). Known: done record or job present. Otherwise the event gets the
// shard's next acceptance number, its place in the phone's lane, and that number
// in its job data (the data arrives without it: `{` + the other fields).
// KEYS 1-9: BullMQ's; 10 done record, 11 job, 12 lane, 13 sequence, 14 owner.
// ARGV 1-3: BullMQ's; 4 event id, 5 our shard count.
const CLAIM_PREFIX = `
if redis.call('GET', KEYS[14]) ~= ARGV[5] then return ${FENCED} end
if redis.call('EXISTS', KEYS[10], KEYS[11]) > 0 then return ${DUPLICATE} end
local claimedSeq = redis.call('ZSCORE', KEYS[12], ARGV[4])
if not claimedSeq then
  claimedSeq = redis.call('INCR', KEYS[13])
  redis.call('ZADD', KEYS[12], claimedSeq, ARGV[4])
end
ARGV[2] = '{"seq":' .. claimedSeq .. ',' .. string.sub(ARGV[2], 2)
`;

const JOB_NAME = 'event';

export type EnqueueScript = (shardPrefix: string, shardCount: number, eventId: string, data: Omit<EventJobData, 'seq'>) => Promise<string | number>;

/** Claim and add in one script: returns the job id, DUPLICATE or FENCED. */
export function defineEnqueueScript(redis: RedisClient): EnqueueScript {
  const run = defineScript(redis, 'replyflowEnqueueEvent', CLAIM_PREFIX + addStandardJob.content);
  const queueKeys = new Map<string, Record<string, string>>();
  const keysOf = (shardPrefix: string) => {
    let keys = queueKeys.get(shardPrefix);
    if (!keys) {
      keys = new QueueKeys(shardPrefix).getKeys(EVENTS_QUEUE);
      queueKeys.set(shardPrefix, keys);
    }
    return keys;
  };
  return (shardPrefix, shardCount, eventId, data) => {
    const k = keysOf(shardPrefix);
    // As Queue.add with these options would: the same fields in the same order (see Job's constructor and scripts.addJob).
    const opts = Job.optsAsJSON({ attempts: 0, jobId: eventId, removeOnComplete: true, removeOnFail: false });
    const args = [k['']!, eventId, JOB_NAME, Date.now(), null, null, undefined, undefined, null];
    const keys = [k.wait!, k.paused!, k.meta!, k.id!, k.completed!, k.delayed!, k.active!, k.events!, k.marker!];
    keys.push(doneKey(shardPrefix, eventId), `${k['']}${eventId}`, laneKey(shardPrefix, EVENTS_QUEUE, data.phone), seqKey(shardPrefix), shardOwnerKey(shardPrefix));
    return run(keys, [packer.pack(args), JSON.stringify(data), packer.pack(opts), eventId, shardCount]) as Promise<string | number>;
  };
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '@replyflow/shared';

/**
 * A rate limit shared by every worker process: GCRA (generic cell rate algorithm) with
 * reservations, in one Lua script against Redis's own clock.
 *
 * Each call reserves the next free slot: the theoretical arrival time `tat`, then moves `tat` on
 * by the emission interval (see RateLimiter). Slots are therefore exactly one interval apart,
 * whoever asks and from whichever process, and with no burst tolerance (tau = 0) a half-open
 * 1-second interval holds at most `limit` of them. Under a backlog `tat` never falls behind now,
 * so slots are handed out back to back; a fixed-window limiter instead lets up to twice the limit
 * through across a window edge. A reservation is a promise of a slot, not an attempt: the caller
 * just sleeps until it.
 *
 * TIME rather than the callers' clocks, so processes on hosts with skewed clocks still share one
 * schedule; microseconds, so a limit that does not divide 1000 ms keeps its rate.
 * ARGV[2] '1': reserve only a slot that is free now, else return -1.
 */
const RESERVE_LUA = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or 0, now)
if ARGV[2] == '1' and tat > now then return -1 end
local interval = tonumber(ARGV[1])
-- ARGV[3] '1': a cold caller (see RateLimiter.reserve), whose slot is followed by a double interval.
local nextTat = tat + (ARGV[3] == '1' and 2 * interval or interval)
-- %.0f: a bare Lua number this large would be written in exponent notation and lose digits.
-- The key may expire once nextTat has passed: a missing key means the same as a past tat.
redis.call('SET', KEYS[1], string.format('%.0f', nextTat), 'PX', math.ceil((nextTat - now) / 1000) + 1)
return tat - now
`;

/** The most of the limit slots are handed out at. */
const PACE = 0.98;

/**
 * How late after its slot a request may reach the receiver and still keep the
 * contract's bound, at least. Below 10/s the bound's 10% is less than one
 * request, so this, not PACE, sets the interval there: at 98% of the limit
 * only 20 ms were left, and requests on a busy host came 20-40 ms after their
 * slot. 30 ms costs 2.9% of the rate: from 2/s up, any 10 s of a backlog still
 * holds 95% of 10 × limit (at 1/s no pace below the limit can: 9 of 10).
 */
const ARRIVAL_DELAY_US = 30_000;

type ReservingRedis = RedisClient & {
  rateLimitReserve(key: string, intervalUs: number, onlyIfFree: '0' | '1', cold: '0' | '1'): Promise<number>;
};

export class RateLimiter {
  private readonly intervalUs: number;
  /** How late a caller may go after its slot, waking up: half the slack, the other half is for the way to the receiver. */
  readonly wakeToleranceMs: number;
  /** The latest slot this process holds or held, in performance.now() ms. */
  private latestSlotAt = Number.NEGATIVE_INFINITY;

  /** perSecond 0 means unlimited. */
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    perSecond: number,
  ) {
    if (!(perSecond >= 0) || !Number.isFinite(perSecond)) {
      throw new RangeError(`rate limit must be a finite number >= 0, got ${perSecond}`);
    }
    // The contract's bound: no 1-second interval holds more than the limit plus 10%.
    const maxInOneSecond = Math.max(1, Math.floor((perSecond * 11) / 10));
    // maxInOneSecond intervals span more than a second by a slack, so a request that
    // reaches the receiver up to that late after its slot still shares no second with
    // maxInOneSecond later ones (GC pauses, a busy host, a new connection). Paced at
    // most at PACE; from 10/s up that leaves 122 ms of slack.
    const spanUs = 1_000_000 + ARRIVAL_DELAY_US;
    this.intervalUs = perSecond === 0 ? 0 : Math.ceil(Math.max(1_000_000 / (perSecond * PACE), spanUs / maxInOneSecond));
    const slackUs = maxInOneSecond * this.intervalUs - 1_000_000;
    this.wakeToleranceMs = slackUs / 2 / 1000;
    // defineCommand runs the script by EVALSHA, reloading it when Redis has lost it (restart, SCRIPT FLUSH).
    if (this.intervalUs > 0) redis.defineCommand('rateLimitReserve', { numberOfKeys: 1, lua: RESERVE_LUA });
  }

  /** Reserves the next slot and returns how long to wait for it, in ms (0 when it is free now). */
  async acquire(): Promise<number> {
    if (this.intervalUs === 0) return 0;
    return (await this.reserve('0')) / 1000;
  }

  /** Takes a slot only if one is free now: whether it did. */
  async acquireIfFree(): Promise<boolean> {
    if (this.intervalUs === 0) return true;
    return (await this.reserve('1')) >= 0;
  }

  /**
   * A process that used no slot for a second is cold: its request likely opens
   * a connection on a busy event loop (a new replica joining a backlog, the
   * first request after a lull) and reaches the receiver up to 200 ms after its
   * slot, more than the slack. The slot after a cold one comes an interval
   * later, so the two cannot bunch; this costs one interval per process and lull.
   */
  private async reserve(onlyIfFree: '0' | '1'): Promise<number> {
    const asked = performance.now();
    const cold = asked - this.latestSlotAt > 1000;
    // Its slot will be no earlier than now: calls made while it is on its way are not cold.
    if (cold) this.latestSlotAt = asked;
    const waitUs = await (this.redis as ReservingRedis).rateLimitReserve(this.key, this.intervalUs, onlyIfFree, cold ? '1' : '0');
    if (waitUs >= 0) this.latestSlotAt = Math.max(this.latestSlotAt, asked + waitUs / 1000);
    else if (cold && this.latestSlotAt === asked) this.latestSlotAt = Number.NEGATIVE_INFINITY;
    return waitUs;
  }
}

/** A workflow's shared rate limit, as its attempts use it. */
export interface SharedRateLimit {
  /** Sleeps until a slot is ours (waitForSlot). */
  wait(): Promise<void>;
  /** Takes a slot only if one is free now, for an attempt that should not wait where it runs. */
  takeIfFree(): Promise<boolean>;
}

export function sharedRateLimit(limiter: RateLimiter, onWait?: (ms: number) => void): SharedRateLimit {
  return { wait: () => waitForSlot(limiter, onWait), takeIfFree: () => limiter.acquireIfFree() };
}

const MAX_RESERVATIONS = 3;

/**
 * Reserves a slot and sleeps until it; onWait sees every non-zero wait (for
 * metrics). A process that wakes later than the limiter's wake tolerance (a
 * busy event loop, a GC pause) gives its slot up and takes a new one: going
 * that late it would share a second at the receiver with more requests than
 * the bound allows.
 */
export async function waitForSlot(limiter: RateLimiter, onWait?: (ms: number) => void): Promise<void> {
  for (let reservation = 1; ; reservation++) {
    // From before asking: the slot is at least this early, and a slow reply makes us late too.
    const asked = performance.now();
    const ms = await limiter.acquire();
    if (ms <= 0) return;
    onWait?.(ms);
    await sleep(ms);
    const lateMs = performance.now() - (asked + ms);
    if (lateMs <= limiter.wakeToleranceMs || reservation === MAX_RESERVATIONS) return;
  }
}

import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '@replyflow/shared';

/**
 * A rate limit shared by every worker process: GCRA (generic cell rate algorithm) with
 * reservations, in one Lua script against Redis's own clock.
 *
 * Each call reserves the next free slot: the theoretical arrival time `tat`, then moves `tat` on
 * by the emission interval T = 1/(0.98 × limit). Slots are therefore exactly T apart, whoever asks and from
 * whichever process, and with no burst tolerance (tau = 0) a half-open 1-second interval holds at
 * most `limit` of them. Callers only add their timer and network jitter on top, which the 10%
 * margin absorbs. Under a backlog `tat` never falls behind now, so slots are handed out back to
 * back at 98% of the limit (PACE); a fixed-window limiter instead lets up to twice the limit through
 * across a window edge. A reservation is a promise of a slot, not an attempt: the caller just
 * sleeps until it.
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
local nextTat = tat + tonumber(ARGV[1])
-- %.0f: a bare Lua number this large would be written in exponent notation and lose digits.
-- The key may expire once nextTat has passed: a missing key means the same as a past tat.
redis.call('SET', KEYS[1], string.format('%.0f', nextTat), 'PX', math.ceil((nextTat - now) / 1000) + 1)
return tat - now
`;

/** The share of the limit the slots are handed out at. */
const PACE = 0.98;

type ReservingRedis = RedisClient & { rateLimitReserve(key: string, intervalUs: number, onlyIfFree: '0' | '1'): Promise<number> };

export class RateLimiter {
  private readonly intervalUs: number;

  /** perSecond 0 means unlimited. */
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    perSecond: number,
  ) {
    if (!(perSecond >= 0) || !Number.isFinite(perSecond)) {
      throw new RangeError(`rate limit must be a finite number >= 0, got ${perSecond}`);
    }
    // Paced a little under the limit, rounded up: slots exactly at the limit
    // leave a one-second window at the receiver no room for requests delayed on
    // their way (a GC pause, a busy host), which then bunch above limit + 10%
    // (23 of 20 seen once). The contract allows 5% under over 10 s.
    this.intervalUs = perSecond === 0 ? 0 : Math.ceil(1_000_000 / (perSecond * PACE));
    // defineCommand runs the script by EVALSHA, reloading it when Redis has lost it (restart, SCRIPT FLUSH).
    if (this.intervalUs > 0) redis.defineCommand('rateLimitReserve', { numberOfKeys: 1, lua: RESERVE_LUA });
  }

  get intervalMs(): number {
    return this.intervalUs / 1000;
  }

  /** Reserves the next slot and returns how long to wait for it, in ms (0 when it is free now). */
  async acquire(): Promise<number> {
    if (this.intervalUs === 0) return 0;
    const waitUs = await (this.redis as ReservingRedis).rateLimitReserve(this.key, this.intervalUs, '0');
    return waitUs / 1000;
  }

  /** Takes a slot only if one is free now: whether it did. */
  async acquireIfFree(): Promise<boolean> {
    if (this.intervalUs === 0) return true;
    return (await (this.redis as ReservingRedis).rateLimitReserve(this.key, this.intervalUs, '1')) >= 0;
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
 * metrics). A process that wakes more than half an interval late (a busy event
 * loop, a GC pause) gives its slot up and takes a new one: several late callers
 * going at once would bunch up at the receiver, above the limit in that second.
 */
export async function waitForSlot(limiter: RateLimiter, onWait?: (ms: number) => void): Promise<void> {
  for (let reservation = 1; ; reservation++) {
    const ms = await limiter.acquire();
    if (ms <= 0) return;
    onWait?.(ms);
    const due = performance.now() + ms;
    await sleep(ms);
    if (performance.now() - due <= limiter.intervalMs / 2 || reservation === MAX_RESERVATIONS) return;
  }
}

import { randomUUID } from 'node:crypto';
import { createKeyspace, PHONE_MEMORY_SECONDS, type Keyspace } from './keyspace.js';
import type { Logger } from './logger.js';
import { withDeadline, type RedisClient } from './redis.js';
import { defineScript, type RedisScript } from './redis-script.js';

/**
 * Changing QUEUE_SHARDS on a live system (docs/scaling.md). The shard count in
 * use is kept in Redis, not only in each process's environment, so that every
 * process agrees on it. A process started with another QUEUE_SHARDS switches
 * the system to it: first every shard of the old and the new count is stamped
 * with the new count (the ingest's claim refuses a shard whose stamp is not
 * its own count, so a process still on the old count can no longer add to
 * it), then the record names the new count and keeps the old one as retired.
 * Workers serve a retired count's shards until its queues are empty, and a
 * phone's events in the new shards wait until the phone has nothing left in
 * the old ones. The ingest checks retired counts for duplicates while their
 * done records may still live (DEDUPE_TTL_SECONDS).
 */
export interface RetiredLayout {
  shards: number;
  retiredAt: number;
  /** Its queues were seen empty: its events have all run. */
  drained: boolean;
}

export interface LayoutRecord {
  shards: number;
  retired: RetiredLayout[];
}

export const layoutRecordKey = (global: string): string => `${global}:layouts`;
/** The shard count allowed to add events to a shard (the ingest's claim checks it). */
export const shardOwnerKey = (shardPrefix: string): string => `${shardPrefix}:owner`;

/** Retired queues are declared empty only this long after the switch: a claim made just before it may still be adding its job. */
export const DRAIN_GRACE_MS = 10_000;
const POLL_MS = 1000;
const SWITCH_LOCK_MS = 10_000;
/** A Redis that does not answer at start does not hold the process up: it uses its own count meanwhile. */
const OPEN_WAIT_MS = 5000;

// KEYS: record. ARGV: wanted shard count, now (ms), how long a retired count is kept (ms).
// Another change may start only once the previous one has drained: a phone's
// events then span at most two shard counts, the current and one retired.
const SWITCH_SCRIPT = `
local wanted = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw).shards == wanted then return {'same', raw} end
local retired = {}
if raw then
  local record = cjson.decode(raw)
  for _, layout in ipairs(record.retired) do
    if not layout.drained then return {'busy', raw} end
    if layout.shards ~= wanted and layout.retiredAt + tonumber(ARGV[3]) > tonumber(ARGV[2]) then retired[#retired + 1] = layout end
  end
  retired[#retired + 1] = {shards = record.shards, retiredAt = tonumber(ARGV[2]), drained = false}
end
local encoded = cjson.encode({shards = wanted, retired = retired})
redis.call('SET', KEYS[1], encoded)
return {raw and 'switched' or 'created', encoded}`;

// KEYS: record. ARGV: the retired shard count now drained.
const DRAINED_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local record = cjson.decode(raw)
for _, layout in ipairs(record.retired) do
  if layout.shards == tonumber(ARGV[1]) then layout.drained = true end
end
local encoded = cjson.encode(record)
redis.call('SET', KEYS[1], encoded)
return encoded`;

/** cjson writes an empty Lua table as `{}`, and a missing one as nothing. */
export function parseLayoutRecord(raw: string): LayoutRecord {
  const parsed = JSON.parse(raw) as { shards: number; retired?: RetiredLayout[] | Record<string, never> };
  return { shards: parsed.shards, retired: Array.isArray(parsed.retired) ? parsed.retired : [] };
}

export interface LayoutOptions {
  prefix: string;
  clustered: boolean;
  /** This process's QUEUE_SHARDS. */
  wantedShards: number;
  dedupeTtlSeconds: number;
  logger: Logger;
}

interface Retired {
  layout: RetiredLayout;
  keyspace: Keyspace;
}

export class ShardLayouts {
  private currentKeyspace: Keyspace;
  private retiredLayouts: Retired[] = [];
  private readonly keyspaces = new Map<number, Keyspace>();
  private readonly listeners: (() => void)[] = [];
  private readonly switchLayout: RedisScript;
  private readonly markDrainedScript: RedisScript;
  private readonly recordKey: string;
  /** Set while this process's QUEUE_SHARDS waits for an earlier change to drain. */
  private pendingSwitch = false;
  private applied = '';
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly redis: RedisClient,
    private readonly options: LayoutOptions,
  ) {
    this.currentKeyspace = this.keyspace(options.wantedShards);
    this.recordKey = layoutRecordKey(this.currentKeyspace.global);
    this.switchLayout = defineScript(redis, 'replyflowSwitchLayout', SWITCH_SCRIPT);
    this.markDrainedScript = defineScript(redis, 'replyflowLayoutDrained', DRAINED_SCRIPT);
  }

  /**
   * Agrees with Redis on the shard count, switching to this process's when
   * it differs, then follows later changes. Until Redis answers, the process
   * uses its own count: the claim's stamp check keeps that from doing harm.
   */
  static async open(redis: RedisClient, options: LayoutOptions, pollMs = POLL_MS): Promise<ShardLayouts> {
    const layouts = new ShardLayouts(redis, options);
    layouts.pendingSwitch = true;
    await withDeadline(layouts.poll(), OPEN_WAIT_MS).catch((error: Error) => options.logger.warn({ err: error.message }, 'could not read the shard layout yet'));
    layouts.timer = setInterval(() => {
      layouts.poll().catch(() => {}); // Redis down: the health monitor reports it
    }, pollMs);
    layouts.timer.unref();
    return layouts;
  }

  /** The record as it is, for a one-off command (the CLI): no switch, no polling. */
  static async read(redis: RedisClient, options: Pick<LayoutOptions, 'prefix' | 'clustered' | 'wantedShards'>): Promise<Keyspace> {
    const configured = createKeyspace(options.prefix, options.wantedShards, options.clustered);
    const raw = (await redis.get(layoutRecordKey(configured.global))) as string | null;
    return raw ? createKeyspace(options.prefix, parseLayoutRecord(raw).shards, options.clustered) : configured;
  }

  get current(): Keyspace {
    return this.currentKeyspace;
  }

  /**
   * Earlier shard counts retired within the window (by default the dedupe
   * window: their done records may still answer for a redelivered event).
   */
  retired(withinSeconds = this.options.dedupeTtlSeconds): Keyspace[] {
    const windowStart = Date.now() - withinSeconds * 1000;
    return this.retiredLayouts.filter((r) => r.layout.retiredAt > windowStart).map((r) => r.keyspace);
  }

  /** The retired shard count whose events must all run before a phone's events in the current shards. */
  draining(): (RetiredLayout & { keyspace: Keyspace }) | undefined {
    const retired = this.retiredLayouts.find((r) => !r.layout.drained);
    return retired && { ...retired.layout, keyspace: retired.keyspace };
  }

  isCurrentShard(shardPrefix: string): boolean {
    return this.currentKeyspace.shards.includes(shardPrefix);
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Reads the record now (the ingest does when a shard refuses its count). */
  async refresh(): Promise<void> {
    const raw = (await this.redis.get(this.recordKey)) as string | null;
    if (raw === null) {
      // A Redis that lost the record (flushed, replaced): set it up again.
      this.pendingSwitch = true;
      await this.trySwitch();
      return;
    }
    this.apply(raw);
  }

  async markDrained(shards: number): Promise<void> {
    const raw = (await this.markDrainedScript([this.recordKey], [shards])) as string | null;
    if (raw) this.apply(raw);
    this.options.logger.info({ shards }, 'the retired shard layout has drained');
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.pendingSwitch) await this.trySwitch();
    else await this.refresh();
  }

  private async trySwitch(): Promise<void> {
    const { wantedShards, logger } = this.options;
    const lockKey = `${this.recordKey}:lock`;
    const token = randomUUID();
    if ((await this.redis.set(lockKey, token, 'PX', SWITCH_LOCK_MS, 'NX')) === null) return; // another process is switching
    try {
      const raw = (await this.redis.get(this.recordKey)) as string | null;
      const record = raw ? parseLayoutRecord(raw) : undefined;
      if (record && record.shards !== wantedShards && record.retired.some((r) => !r.drained)) {
        if (!this.applied) logger.warn({ wanted: wantedShards, current: record.shards }, 'QUEUE_SHARDS differs; the change waits until the previous one has drained');
        this.apply(raw!);
        return;
      }
      const stamped = [this.keyspace(wantedShards), ...(record ? [this.keyspace(record.shards)] : [])].flatMap((k) => k.shards);
      // Stamps first: from here on, a process on the old count cannot add to any of these shards.
      await Promise.all(stamped.map((shard) => this.redis.set(shardOwnerKey(shard), String(wantedShards))));
      const keptMs = Math.max(this.options.dedupeTtlSeconds, PHONE_MEMORY_SECONDS) * 1000;
      const [outcome, encoded] = (await this.switchLayout([this.recordKey], [wantedShards, Date.now(), keptMs])) as [string, string];
      if (outcome === 'switched') logger.warn({ from: record?.shards, to: wantedShards }, 'QUEUE_SHARDS changed: new events go to the new shards, the old ones drain first');
      this.pendingSwitch = false;
      this.apply(encoded);
    } finally {
      await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end", 1, lockKey, token);
    }
  }

  private apply(raw: string): void {
    if (raw === this.applied) return;
    const record = parseLayoutRecord(raw);
    if (this.pendingSwitch && this.applied && record.shards !== parseLayoutRecord(this.applied).shards) {
      // Someone else changed the count while ours waited: the later decision stands.
      this.pendingSwitch = false;
    }
    this.applied = raw;
    this.currentKeyspace = this.keyspace(record.shards);
    this.retiredLayouts = record.retired.map((layout) => ({ layout, keyspace: this.keyspace(layout.shards) }));
    for (const listener of this.listeners) listener();
  }

  private keyspace(shards: number): Keyspace {
    let keyspace = this.keyspaces.get(shards);
    if (!keyspace) {
      keyspace = createKeyspace(this.options.prefix, shards, this.options.clustered);
      this.keyspaces.set(shards, keyspace);
    }
    return keyspace;
  }
}

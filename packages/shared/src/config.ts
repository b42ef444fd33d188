import { isIPv4, isIPv6 } from 'node:net';
import bytes from 'bytes';
import { z } from 'zod';
import { ConfigError } from './errors.js';

export type Role = 'ingest' | 'worker' | 'cli';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');
const httpUrl = z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' });
// bytes.parse reads an unknown unit ("2M", "10MiB", "1e3") as its leading number of bytes.
const size = /^\d+((\.\d+)? *(b|kb|mb|gb|tb|pb))?$/i;
const commaList = z.string().transform((value) =>
  value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean),
);
// A typo in a seed would otherwise only show up later, as a cluster that cannot be reached.
const clusterSeeds = commaList.refine(
  (seeds) => seeds.length > 0 && seeds.every(isSeed),
  'expected comma-separated host:port entries, such as redis-1:6379,redis-2:6379',
);

/** host:port, the host a name, an IPv4 address or an IPv6 address in brackets. */
function isSeed(seed: string): boolean {
  const [, host = '', port] = /^(.*):(\d{1,5})$/.exec(seed) ?? [];
  if (port === undefined || Number(port) < 1 || Number(port) > 65535) return false;
  if (host.startsWith('[') && host.endsWith(']')) return isIPv6(host.slice(1, -1));
  if (/^[\d.]+$/.test(host)) return isIPv4(host);
  return /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/i.test(host);
}

const schema = z.object({
  // Without a host ioredis connects to localhost.
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, hostname: /./, message: 'expected a redis:// or rediss:// URL with a host, such as redis://redis:6379' })
    .default('redis://127.0.0.1:6379'),
  REDIS_CLUSTER_NODES: clusterSeeds.optional(),
  QUEUE_SHARDS: positiveInt.max(1024).default(1),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only').default('replyflow'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  METRICS_PORT: port.optional(),
  ADMIN_PORT: port.default(3001),
  ADMIN_USER: z.string().min(1).default('admin'),
  ADMIN_PASSWORD: z.string().min(1).optional(),
  WEBHOOK_SECRET: commaList.optional(),
  WEBHOOK_SECRET_FILE: z.string().min(1).default('.replyflow/webhook-secret'),
  SIGNATURE_MODE: z.enum(['token', 'hmac-sha256', 'none']).default('token'),
  BODY_LIMIT: z
    .string()
    .trim()
    .transform((value, ctx) => {
      const parsed = size.test(value) ? bytes.parse(value) : null;
      if (parsed === null || !Number.isFinite(parsed) || parsed <= 0) {
        ctx.addIssue({ code: 'custom', message: 'expected a size such as 1mb, 512kb or 100000 (units: b, kb, mb, gb, tb, pb)' });
        return z.NEVER;
      }
      return parsed;
    })
    .default(1024 * 1024),
  DEDUPE_TTL_SECONDS: positiveInt.default(604800),
  WORKER_CONCURRENCY: positiveInt.max(10000).default(32),
  FORWARD_URL: httpUrl.optional(),
  FORWARD_SECRET: z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'expected whsec_<base64>').optional(),
  FORWARD_TIMEOUT_MS: positiveInt.default(10000),
  FORWARD_RATE_LIMIT: nonNegativeInt.default(0),
  MAX_ATTEMPTS: positiveInt.max(100).default(8),
  BACKOFF_BASE_MS: nonNegativeInt.default(1000),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(30000),
  REQUIRE_SAFE_REDIS: flag.default(false),
  REPLY_RULES: z.string().min(1).optional(),
  NOTIFYER_SEND_URL: httpUrl.optional(),
  NOTIFYER_API_KEY: z.string().min(1).optional(),
  SEND_RATE_LIMIT: nonNegativeInt.default(20),
  WORKFLOWS: z.string().min(1).optional(),
  // A dead worker's jobs are taken over within this and two stall checks (JOB_LOCK_MS/2 apart): 40 s, under the contract's 60.
  JOB_LOCK_MS: positiveInt.min(1000).default(20000),
  WORKER_SHARDS: z
    .string()
    .regex(/^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$/, 'expected shard numbers and ranges, such as 0-2,5')
    .optional(),
  REDIS_ACK_REPLICAS: nonNegativeInt.max(16).default(0),
});

type Env = z.output<typeof schema>;

export interface Config {
  role: Role;
  redisUrl: string;
  redisClusterNodes: string[] | undefined;
  queueShards: number;
  queuePrefix: string;
  logLevel: Env['LOG_LEVEL'];
  port: number;
  host: string;
  metricsPort: number;
  adminPort: number;
  adminUser: string;
  adminPassword: string | undefined;
  webhookSecrets: string[];
  webhookSecretFile: string;
  signatureMode: Env['SIGNATURE_MODE'];
  bodyLimitBytes: number;
  dedupeTtlSeconds: number;
  workerConcurrency: number;
  forwardUrl: string | undefined;
  forwardSecret: string | undefined;
  forwardTimeoutMs: number;
  forwardRateLimit: number;
  maxAttempts: number;
  backoffBaseMs: number;
  shutdownTimeoutMs: number;
  requireSafeRedis: boolean;
  replyRules: string | undefined;
  notifyerSendUrl: string | undefined;
  notifyerApiKey: string | undefined;
  sendRateLimit: number;
  /** A module exporting workflows made with defineWorkflow. */
  workflows: string | undefined;
  /** A job's lock without renewal; a dead worker's jobs are taken over within about twice this. */
  jobLockMs: number;
  /** The shards this worker serves (WORKER_SHARDS, default all). */
  workerShards: number[];
  /** The ingest answers 2xx only once this many replicas hold the event (WAIT). */
  redisAckReplicas: number;
}

/** "0-2,5" → [0, 1, 2, 5]; every shard must exist. */
function parseShardList(list: string | undefined, shards: number): number[] {
  if (list === undefined) return Array.from({ length: shards }, (_, shard) => shard);
  const chosen = new Set<number>();
  for (const part of list.split(',')) {
    const [from, to = from] = part.split('-').map((n) => Number(n.trim()));
    for (let shard = from!; shard <= to!; shard++) chosen.add(shard);
  }
  const missing = [...chosen].find((shard) => shard >= shards);
  if (missing !== undefined) throw new ConfigError('WORKER_SHARDS', `shard ${missing} does not exist (QUEUE_SHARDS=${shards})`);
  if (chosen.size === 0) throw new ConfigError('WORKER_SHARDS', 'names no shard');
  return [...chosen].sort((a, b) => a - b);
}

const defaultMetricsPort: Record<Role, number> = { ingest: 9464, worker: 9465, cli: 0 };

/** A clash would otherwise show up as EADDRINUSE once the first listener is already up. Port 0 picks a free port. */
function checkPortsDiffer(listeners: Array<[string, number]>): void {
  const taken = new Map<number, string>();
  for (const [variable, port] of listeners) {
    const other = taken.get(port);
    if (other !== undefined) throw new ConfigError(variable, `${port} is also ${other}; give each listener its own port`);
    if (port !== 0) taken.set(port, variable);
  }
}

/**
 * Reads the environment once, at start. Empty values count as unset, because
 * `${VAR:-}` in compose files and blank lines in `.env` files produce them.
 * Throws ConfigError naming the first bad variable.
 */
export function loadConfig(role: Role, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  const e = parsed.data;
  if (e.REPLY_RULES && !e.NOTIFYER_SEND_URL && role === 'worker') {
    throw new ConfigError('NOTIFYER_SEND_URL', 'required when REPLY_RULES is set');
  }
  const metricsPort = e.METRICS_PORT ?? defaultMetricsPort[role];
  if (role === 'ingest') {
    const listeners: Array<[string, number]> = [['PORT', e.PORT], ['METRICS_PORT', metricsPort]];
    if (e.ADMIN_PASSWORD) listeners.push(['ADMIN_PORT', e.ADMIN_PORT]);
    checkPortsDiffer(listeners);
  }
  return Object.freeze({
    role,
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES,
    queueShards: e.QUEUE_SHARDS,
    queuePrefix: e.QUEUE_PREFIX,
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    host: e.HOST,
    metricsPort,
    adminPort: e.ADMIN_PORT,
    adminUser: e.ADMIN_USER,
    adminPassword: e.ADMIN_PASSWORD,
    webhookSecrets: e.WEBHOOK_SECRET ?? [],
    webhookSecretFile: e.WEBHOOK_SECRET_FILE,
    signatureMode: e.SIGNATURE_MODE,
    bodyLimitBytes: e.BODY_LIMIT,
    dedupeTtlSeconds: e.DEDUPE_TTL_SECONDS,
    workerConcurrency: e.WORKER_CONCURRENCY,
    forwardUrl: e.FORWARD_URL,
    forwardSecret: e.FORWARD_SECRET,
    forwardTimeoutMs: e.FORWARD_TIMEOUT_MS,
    forwardRateLimit: e.FORWARD_RATE_LIMIT,
    maxAttempts: e.MAX_ATTEMPTS,
    backoffBaseMs: e.BACKOFF_BASE_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    requireSafeRedis: e.REQUIRE_SAFE_REDIS,
    replyRules: e.REPLY_RULES,
    notifyerSendUrl: e.NOTIFYER_SEND_URL,
    notifyerApiKey: e.NOTIFYER_API_KEY,
    sendRateLimit: e.SEND_RATE_LIMIT,
    workflows: e.WORKFLOWS,
    jobLockMs: e.JOB_LOCK_MS,
    workerShards: parseShardList(e.WORKER_SHARDS, e.QUEUE_SHARDS),
    redisAckReplicas: e.REDIS_ACK_REPLICAS,
  });
}

// Everything `npm run bench` can be told, from the environment. Defaults are the
// issue's: 50 connections, 20,000 events, a 5-minute soak.

export const SECTIONS = ['ingest', 'worker', 'redis', 'soak', 'profile', 'scale', 'pairs'] as const;
export type Section = (typeof SECTIONS)[number];

export interface BenchConfig {
  /** Measured seconds of each ingest run (after the warm-up). */
  seconds: number;
  warmupSeconds: number;
  /** Ingest rounds; each round runs every contender once, in a rotated order. */
  rounds: number;
  connections: number;
  /** Events drained by each worker contender, and stored for the Redis cost figures. */
  events: number;
  phones: number;
  workerRounds: number;
  /** replyflow's WORKER_CONCURRENCY default; the raw workers use the same. */
  workerConcurrency: number;
  soakSeconds: number;
  /** Webhooks per second during the soak. */
  soakRate: number;
  profile: boolean;
  /** BENCH_SCALE=1: adds the scale section (masters × workers). */
  scale: boolean;
  /** Events per scale cell. */
  scaleEvents: number;
  sections: ReadonlySet<Section>;
  /** LOG_LEVEL of replyflow's processes: `info` is what ships. */
  logLevel: string;
  /** BENCH_WORKER_VARIANT: settings of a fifth worker contender, replyflow with one worker and these settings. */
  workerVariant: Record<string, string> | undefined;
  /** BENCH_PAIRS: paired drains of the pairs section (replyflow, then the variant, or the other way round). */
  pairs: number;
}

function numberFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min} (got ${JSON.stringify(raw)})`);
  return value;
}

function settingsFrom(env: NodeJS.ProcessEnv, name: string): Record<string, string> | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const fail = () => new Error(`${name} must be a JSON object of settings, e.g. {"WORKER_CONCURRENCY":"64"} (got ${JSON.stringify(raw)})`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw fail();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail();
  const entries = Object.entries(value);
  if (entries.length === 0 || entries.some(([, v]) => typeof v !== 'string')) throw fail();
  const settings = Object.fromEntries(entries) as Record<string, string>;
  if (settings.LOG_LEVEL !== undefined) logLevelFrom(name, settings.LOG_LEVEL);
  return settings;
}

/** The levels at which replyflow's processes print the start line the bench waits for (`ingest listening`, `worker started`). */
const LEVELS_WITH_START_LINE = ['trace', 'debug', 'info'];

function logLevelFrom(name: string, value: string): string {
  if (!LEVELS_WITH_START_LINE.includes(value)) {
    throw new Error(`${name}: LOG_LEVEL must be one of ${LEVELS_WITH_START_LINE.join(', ')} here (got ${JSON.stringify(value)}): above info the processes do not print the start line the bench waits for`);
  }
  return value;
}

export function loadBenchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const profile = env.BENCH_PROFILE === '1' || env.BENCH_PROFILE === 'true';
  const scale = env.BENCH_SCALE === '1' || env.BENCH_SCALE === 'true';
  const defaultSections: Section[] = [
    'ingest',
    'worker',
    'redis',
    'soak',
    ...(profile ? (['profile'] as const) : []),
    ...(scale ? (['scale'] as const) : []),
  ];
  const sections = (env.BENCH_SECTIONS ? env.BENCH_SECTIONS.split(',').map((s) => s.trim()).filter(Boolean) : defaultSections) as Section[];
  for (const section of sections) {
    if (!SECTIONS.includes(section)) throw new Error(`BENCH_SECTIONS: unknown section ${section} (known: ${SECTIONS.join(', ')})`);
  }
  const workerVariant = settingsFrom(env, 'BENCH_WORKER_VARIANT');
  if (sections.includes('pairs') && !workerVariant) {
    throw new Error('BENCH_SECTIONS=pairs pairs replyflow with a variant: set BENCH_WORKER_VARIANT too, e.g. {"WORKER_CONCURRENCY":"64"}');
  }
  return {
    seconds: numberFrom(env, 'BENCH_SECONDS', 5, 1),
    warmupSeconds: numberFrom(env, 'BENCH_WARMUP_SECONDS', 3, 0),
    rounds: Math.round(numberFrom(env, 'BENCH_ROUNDS', 6, 1)),
    connections: Math.round(numberFrom(env, 'BENCH_CONNECTIONS', 50, 1)),
    events: Math.round(numberFrom(env, 'BENCH_EVENTS', 20_000, 100)),
    phones: Math.round(numberFrom(env, 'BENCH_PHONES', 500, 1)),
    workerRounds: Math.round(numberFrom(env, 'BENCH_WORKER_ROUNDS', 5, 1)),
    workerConcurrency: Math.round(numberFrom(env, 'BENCH_WORKER_CONCURRENCY', 32, 1)),
    soakSeconds: numberFrom(env, 'BENCH_SOAK_SECONDS', 300, 5),
    soakRate: numberFrom(env, 'BENCH_SOAK_RATE', 300, 1),
    profile,
    scale,
    scaleEvents: Math.round(numberFrom(env, 'BENCH_SCALE_EVENTS', 4000, 100)),
    sections: new Set(sections),
    logLevel: logLevelFrom('BENCH_LOG_LEVEL', env.BENCH_LOG_LEVEL || 'info'),
    workerVariant,
    pairs: Math.round(numberFrom(env, 'BENCH_PAIRS', 10, 1)),
  };
}

// `npm run bench`: every section on one private redis-server, in one run, then
// bench/results/latest.json, latest.md (the table the README shows) and
// latest.svg. Settings: bench/README.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runIngest, type IngestResult } from './ingest.js';
import { loadBenchConfig } from './lib/config.js';
import type { BenchContext } from './lib/context.js';
import { progress } from './lib/log.js';
import { loadTemplates } from './lib/payloads.js';
import { appMain, resultsDir } from './lib/procs.js';
import { startBenchRedis } from './lib/redis.js';
import { machineInfo } from './lib/sys.js';
import { runProfile, type ProfileResult } from './profile.js';
import { runRedisCost, type RedisCostResult } from './redis-cost.js';
import { runPairs, type PairsResult } from './pairs.js';
import { evaluateTargets, renderMarkdown, renderScaleMarkdown, writePairsFiles, writeScaleFiles, type BenchReport, type RunContext } from './report.js';
import { runScale, type ScaleResult } from './scale.js';
import { runSoak, type SoakResult } from './soak.js';
import { renderSvg } from './svg.js';
import { runWorker, type WorkerResult } from './worker.js';

// Ctrl-C: leave through process.exit, so the helpers' exit hook kills every child process.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

function wrkVersion(): string {
  const probe = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if ((probe.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error('npm run bench needs wrk on PATH: apt-get install wrk (Debian/Ubuntu) or brew install wrk (macOS)');
  }
  return /wrk \S+/.exec(`${probe.stdout}${probe.stderr}`)?.[0] ?? 'wrk';
}

/** The code measured: the commit, and whether apps/ or packages/ differed from it. */
function codeVersion(): { commit: string; modified: boolean } {
  const git = (args: string[]) => spawnSync('git', args, { encoding: 'utf8' }).stdout?.trim() ?? '';
  return { commit: git(['rev-parse', '--short', 'HEAD']) || 'unknown', modified: git(['status', '--porcelain', '--', 'apps', 'packages']) !== '' };
}

const config = loadBenchConfig();
for (const app of ['ingest', 'worker'] as const) {
  if (!existsSync(appMain(app))) throw new Error(`${appMain(app)} is missing: run npm run build first`);
}
const loadGenerator = config.sections.has('ingest') || config.sections.has('profile') ? wrkVersion() : 'wrk';
mkdirSync(resultsDir, { recursive: true });
const startedAt = new Date();
const before = machineInfo();
progress(`machine: ${before.cpuModel}, ${before.cores} cores, load average ${before.loadavg.join(' ')}`);
progress(`sections: ${[...config.sections].join(', ')}`);
const redis = await startBenchRedis();
progress(`redis-server ${redis.version} on ${redis.url} (AOF on, fsync every second)`);
const ctx: BenchContext = { config, redis, templates: loadTemplates() };

let ingest: IngestResult | undefined;
let worker: WorkerResult | undefined;
let redisCost: RedisCostResult | undefined;
let soak: SoakResult | undefined;
let profile: ProfileResult | undefined;
let scale: ScaleResult | undefined;
let pairs: PairsResult | undefined;
try {
  if (config.sections.has('ingest')) ingest = await runIngest(ctx);
  if (config.sections.has('worker')) worker = await runWorker(ctx);
  if (config.sections.has('redis')) redisCost = await runRedisCost(ctx);
  if (config.sections.has('soak')) soak = await runSoak(ctx);
  if (config.sections.has('profile')) profile = await runProfile(ctx);
  if (config.sections.has('scale')) scale = await runScale(ctx, before.cores);
  if (config.sections.has('pairs')) pairs = await runPairs(ctx);
} finally {
  await redis.server.cleanup();
}

const finishedAt = new Date();
const settings = { ...config, sections: [...config.sections] };
const noise: Record<string, number> = {};
if (ingest) noise.ingest = ingest.otherCores;
if (worker) noise.worker = worker.otherCores;
if (soak) noise.soak = soak.otherCores;
if (scale) noise.scale = scale.otherCores;
const code = codeVersion();
const report: BenchReport = {
  startedAt: startedAt.toISOString(),
  finishedAt: finishedAt.toISOString(),
  durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
  settings,
  code,
  machine: {
    before,
    after: machineInfo(),
    redis: `Redis ${redis.version}`,
    redisConfig: 'AOF on, appendfsync everysec, noeviction',
    loadGenerator,
  },
  noise,
  targets: evaluateTargets({ ingest, worker, redisCost, soak, settings }),
  ...(ingest && { ingest }),
  ...(worker && { worker }),
  ...(redisCost && { redisCost }),
  ...(soak && { soak }),
  ...(profile && { profile }),
  ...(scale && { scale }),
  problems: [...(ingest?.problems ?? []), ...(worker?.problems ?? []), ...(soak?.problems ?? []), ...(scale?.problems ?? []), ...(pairs?.problems ?? [])],
};
const written: string[] = [];
const context: RunContext = { startedAt: report.startedAt, finishedAt: report.finishedAt, settings, code, machine: report.machine };
if (scale) {
  // The scale figures also stand alone, so a scale-only run (BENCH_SECTIONS=scale) does not replace latest.*.
  writeScaleFiles({ ...context, scale });
  written.push('scale.json', 'scale.md', 'scale.svg');
}
if (pairs) {
  const markdown = writePairsFiles({ ...context, pairs });
  written.push('pairs.json', 'pairs.md');
  process.stdout.write(`\n${markdown}\n`);
}
// The scale and pairs sections write files of their own: a run of only those leaves latest.* as it was.
const onlyOwnFiles = [...config.sections].every((s) => s === 'scale' || s === 'pairs');
if (!onlyOwnFiles) {
  const markdown = renderMarkdown(report);
  writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(resultsDir, 'latest.md'), markdown);
  writeFileSync(join(resultsDir, 'latest.svg'), renderSvg(report));
  process.stdout.write(`\n${markdown}\n`);
  written.unshift('latest.json', 'latest.md', 'latest.svg');
} else if (scale) {
  process.stdout.write(`\n${renderScaleMarkdown(scale).join('\n')}\n`);
}
progress(`wrote ${written.map((f) => `bench/results/${f}`).join(', ') || 'nothing'} in ${Math.round(report.durationSeconds)} s`);
// A figure from a run that lost, doubled or reordered events means nothing: fail loudly.
if (report.problems.length > 0) process.exitCode = 1;

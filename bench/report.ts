// Turns one run's results into bench/results/latest.json, the markdown the
// README embeds (latest.md, also printed), and the targets' verdicts.
import type { BenchConfig } from './lib/config.js';
import type { MachineInfo } from './lib/sys.js';
import { INGEST_CONTENDERS, type IngestResult } from './ingest.js';
import type { ProfileResult } from './profile.js';
import type { RedisCostResult } from './redis-cost.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resultsDir } from './lib/procs.js';
import { renderPairsMarkdown, type PairsResult } from './pairs.js';
import { scaleNotes, type ScaleResult } from './scale.js';
import { renderScaleSvg } from './svg.js';
import type { SoakResult } from './soak.js';
import type { WorkerContender, WorkerResult } from './worker.js';

export interface Target {
  name: string;
  /** The measured value, in the unit of `limit`. */
  value: number | null;
  limit: number;
  direction: 'min' | 'max';
  /** The value must stay strictly below the limit. */
  strict?: boolean;
  unit: string;
  holds: boolean | null;
  note?: string;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  settings: Omit<BenchConfig, 'sections'> & { sections: string[] };
  /** Absent in reports written before it was recorded. */
  code?: { commit: string; modified: boolean };
  machine: { before: MachineInfo; after: MachineInfo; redis: string; redisConfig: string; loadGenerator: string };
  /** Median cores busy with other work during the measured windows, per section. */
  noise: Record<string, number>;
  targets: Target[];
  ingest?: IngestResult;
  worker?: WorkerResult;
  redisCost?: RedisCostResult;
  soak?: SoakResult;
  profile?: ProfileResult;
  /** With BENCH_SCALE=1: masters × workers. */
  scale?: ScaleResult;
  problems: string[];
}

const n0 = (x: number) => Math.round(x).toLocaleString('en-US');
const n1 = (x: number) => x.toFixed(1);
const n2 = (x: number) => x.toFixed(2);
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

function target(
  name: string,
  value: number | null | undefined,
  limit: number,
  direction: 'min' | 'max' | 'below',
  unit: string,
  note?: string,
): Target {
  const v = value ?? null;
  const holds = v === null || Number.isNaN(v) ? null : direction === 'min' ? v >= limit : direction === 'max' ? v <= limit : v < limit;
  const bound = direction === 'below' ? { direction: 'max' as const, strict: true } : { direction };
  return { name, value: v, limit, ...bound, unit, holds, ...(note ? { note } : {}) };
}

export function evaluateTargets(r: Pick<BenchReport, 'ingest' | 'worker' | 'redisCost' | 'soak' | 'settings'>): Target[] {
  const soakNote = r.soak && r.soak.seconds < 300 ? `soak of ${r.soak.seconds} s, not the issue's 300 s` : undefined;
  return [
    target('ingest ≥ 0.85 × bare Express requests/s', r.ingest?.ratios.cOverA, 0.85, 'min', '×'),
    target('ingest ≥ 1.3 × naive pipeline requests/s', r.ingest?.ratios.cOverB, 1.3, 'min', '×'),
    target(
      `ingest p99 ≤ 25 ms at ${r.settings.connections} connections`,
      r.ingest?.contenders.replyflow.p99Ms,
      25,
      'max',
      'ms',
      r.ingest ? `median of rounds; worst round ${r.ingest.contenders.replyflow.worstP99Ms.toFixed(1)} ms` : undefined,
    ),
    target('worker ≥ 0.8 × raw BullMQ worker doing the same POST', r.worker?.ratios.replyflowOverRaw, 0.8, 'min', '×'),
    target(
      '≤ 400 bytes of Redis memory per completed event (dedupe window)',
      r.redisCost?.bytesPerCompletedEventMarginal,
      400,
      'max',
      'B',
      r.redisCost
        ? `per further event; plus ${mb(r.redisCost.fixedBytes)} that does not grow with events, so ${n0(r.redisCost.bytesPerCompletedEvent)} B per event over the first ${n0(r.redisCost.events)}` +
            (r.redisCost.streamsAtCap === false ? '; event streams not yet at their cap, so too high: use BENCH_EVENTS ≥ 5000' : '')
        : undefined,
    ),
    target('ingest RSS growth < 10% over the soak', r.soak ? r.soak.ingest.growth * 100 : null, 10, 'below', '%', soakNote),
    target('worker RSS growth < 10% over the soak', r.soak ? r.soak.worker.growth * 100 : null, 10, 'below', '%', soakNote),
  ];
}

function valueText(t: Target): string {
  if (t.value === null) return 'not measured';
  if (t.unit === '×') return `${n2(t.value)}×`;
  if (t.unit === '%') return `${t.value >= 0 ? '+' : ''}${n1(t.value)}%`;
  if (t.unit === 'B') return `${n0(t.value)} B`;
  return `${n1(t.value)} ${t.unit}`;
}

/** The scale section's table and notes (in latest.md, and alone in scale.md). */
export function renderScaleMarkdown(s: ScaleResult): string[] {
  const cell = (masters: number, workers: number) => s.cells.find((c) => c.masters === masters && c.workers === workers);
  const rowOf = (masters: number) => {
    const first = cell(masters, s.workers[0] as number);
    const redis = first?.redis === 'cluster' ? `Redis Cluster, ${masters} masters, \`QUEUE_SHARDS=${first.shards}\`` : 'standalone redis-server, `QUEUE_SHARDS=1`';
    const cols = s.workers.map((w) => {
      const c = cell(masters, w);
      if (!c) return '—';
      const base = cell(masters, s.workers[0] as number);
      const x = base && w !== s.workers[0] ? ` (${n2(c.eventsPerSecond / base.eventsPerSecond)}×)` : '';
      return `${n0(c.eventsPerSecond)}${x}`;
    });
    return `| ${masters} (${redis}) | ${cols.join(' | ')} |`;
  };
  const cpuRowOf = (masters: number) =>
    `| ${masters} | ${s.workers
      .map((w) => {
        const c = cell(masters, w);
        return c ? `${n0(c.workerCpuUs)} + ${n0(c.redisCpuUs)} µs, ${n2(c.busyCores)} cores` : '—';
      })
      .join(' | ')} |`;
  return [
    `**Scale**: events/s draining ${n0(s.events)} queued events over ${s.phones} phones (posted through replyflow's ingest while no worker ran) with 1, 2 and 4 worker processes at concurrency ${s.concurrency}, ` +
      `on one standalone redis-server and on a 3-master Redis Cluster (AOF, fsync every second, no replicas); ${s.rounds} round${s.rounds === 1 ? '' : 's'}, medians, on ${s.cores} cores.`,
    '',
    `| masters | ${s.workers.map((w) => `${w} worker${w === 1 ? '' : 's'}`).join(' | ')} |`,
    `|---|${s.workers.map(() => '---:').join('|')}|`,
    ...s.masters.map(rowOf),
    '',
    'CPU per event (workers + redis-server(s)) and the cores they kept busy during the drain:',
    '',
    `| masters | ${s.workers.map((w) => `${w} worker${w === 1 ? '' : 's'}`).join(' | ')} |`,
    `|---|${s.workers.map(() => '---:').join('|')}|`,
    ...s.masters.map(cpuRowOf),
    '',
    ...scaleNotes(s).flatMap((note) => [note, '']),
  ];
}

/** "Measured <date> UTC at <commit>": when and on what code a report's figures were taken. */
function measuredAt(r: Pick<BenchReport, 'startedAt' | 'code'>): string {
  const code = r.code ? ` at ${r.code.commit}${r.code.modified ? ' (with uncommitted changes)' : ''}` : '';
  return `Measured ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC${code}`;
}

/** The run's context, which the sections with files of their own (scale, pairs) store beside their figures. */
export type RunContext = Pick<BenchReport, 'startedAt' | 'finishedAt' | 'settings' | 'code' | 'machine'>;

/** bench/results/scale.json as run.ts writes it: the scale section with the run's context. */
export type ScaleReport = RunContext & { scale: ScaleResult };

/** Writes bench/results/scale.json, scale.md and scale.svg (run.ts after a scale run; render.ts from scale.json). */
export function writeScaleFiles(r: ScaleReport): void {
  const s = r.scale;
  const m = r.machine.before;
  const markdown = [
    '<!-- written by npm run bench with BENCH_SCALE=1 (bench/scale.ts, bench/report.ts); run it again rather than editing -->',
    `${measuredAt(r)} on ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, ${r.machine.redis}; ` +
      `other work kept a median of ${n2(s.otherCores)} cores busy during the drains (load average ${m.loadavg.join(' ')} at the start, ${r.machine.after.loadavg.join(' ')} at the end).`,
    '',
    ...renderScaleMarkdown(s),
    '![scale: events/s by masters and workers](/bench/results/scale.svg)',
    '',
    ...(s.problems.length > 0 ? ['**Problems seen in this run:**', '', ...s.problems.map((p) => `- ${p}`), ''] : []),
  ].join('\n');
  const stored: ScaleReport = { ...r, scale: { ...s, notes: scaleNotes(s) } };
  writeFileSync(join(resultsDir, 'scale.json'), `${JSON.stringify(stored, null, 2)}\n`);
  writeFileSync(join(resultsDir, 'scale.md'), markdown);
  writeFileSync(join(resultsDir, 'scale.svg'), renderScaleSvg(s, `replyflow scale, ${r.startedAt.slice(0, 10)} (${m.cores} cores, ${m.cpuModel})`));
}

export type PairsReport = RunContext & { pairs: PairsResult };

/** The pairs section's files (pairs.json, pairs.md), apart from latest.*; returns the markdown. */
export function writePairsFiles(r: PairsReport): string {
  const m = r.machine.before;
  const markdown = [
    '<!-- written by npm run bench with BENCH_SECTIONS=pairs (bench/pairs.ts, bench/report.ts); run it again rather than editing -->',
    `${measuredAt(r)} on ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, ${r.machine.redis}.`,
    '',
    ...renderPairsMarkdown(r.pairs),
    ...(r.pairs.problems.length > 0 ? ['**Problems seen in this run:**', '', ...r.pairs.problems.map((p) => `- ${p}`), ''] : []),
  ].join('\n');
  writeFileSync(join(resultsDir, 'pairs.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(join(resultsDir, 'pairs.md'), markdown);
  return markdown;
}

export function renderMarkdown(r: BenchReport): string {
  const out: string[] = [];
  const m = r.machine.before;
  const noise = Object.entries(r.noise)
    .map(([section, cores]) => `${section} ${n2(cores)}`)
    .join(', ');
  out.push(
    `<!-- written by npm run bench (bench/report.ts); run it again rather than editing -->`,
    `${measuredAt(r)} ` +
      `in one run of \`npm run bench\` (${Math.round(r.durationSeconds / 60)} min) on ${m.cpuModel}, ` +
      `${m.cores} cores, Node ${m.node}, ${r.machine.redis} (${r.machine.redisConfig}), load from ${r.machine.loadGenerator} on 127.0.0.1. ` +
      `The machine is shared: other work kept a median of ${noise || 'n/a'} cores busy during the measured windows ` +
      `(load average ${m.loadavg.join(' ')} at the start, ${r.machine.after.loadavg.join(' ')} at the end).`,
    '',
    '| target | measured | holds |',
    '|---|---|---|',
    ...r.targets.map((t) => `| ${t.name} | ${valueText(t)}${t.note ? ` (${t.note})` : ''} | ${t.holds === null ? '—' : t.holds ? 'yes' : '**no**'} |`),
    '',
  );
  if (r.ingest) {
    const i = r.ingest;
    out.push(
      `**Ingest**: ${i.connections} connections, unique signed fixture payloads, ${i.rounds} round${i.rounds === 1 ? '' : 's'} of ${i.seconds} s after a ${i.warmupSeconds} s warm-up, contenders alternated, one process each; medians of the rounds.`,
      '',
      '| contender | requests/s | p50 | p99 | server CPU per request | Redis CPU per request | wrk CPU per request | rounds (requests/s) |',
      '|---|---:|---:|---:|---:|---:|---:|---|',
      ...INGEST_CONTENDERS.map((c) => {
        const x = i.contenders[c];
        return `| ${x.label} | ${n0(x.rps)} | ${n1(x.p50Ms)} ms | ${n1(x.p99Ms)} ms | ${n0(x.serverCpuUs)} µs | ${n0(x.redisCpuUs)} µs | ${n0(x.wrkCpuUs)} µs | ${x.runs.map((run) => n0(run.rps)).join(' / ')} |`;
      }),
      '',
      `All share the machine's cores with Redis and wrk. CPU per request in all (server + Redis + wrk): ${INGEST_CONTENDERS.map((c) => {
        const x = i.contenders[c];
        return `${x.label.slice(0, x.label.indexOf(')') + 1)} ${n0(x.serverCpuUs + x.redisCpuUs + x.wrkCpuUs)} µs`;
      }).join(', ')}.`,
      '',
      `c/a = **${n2(i.ratios.cOverA)}**, c/b = **${n2(i.ratios.cOverB)}** (medians of the per-round ratios: ${i.ratios.perRound.map((p) => `${n2(p.cOverA)}/${n2(p.cOverB)}`).join(', ')}).`,
      '',
      `c/a′ = ${n2(i.ratios.cOverAPrime)} (rounds ${i.ratios.perRound.map((p) => n2(p.cOverAPrime)).join(', ')}): no target, for scale. (a′) is (a) on the HTTP server replyflow's ingest runs on, whose requests are born with Express's prototypes (\`apps/ingest/src/express-server.ts\`), where \`app.listen\` makes Express swap them on every request; see [docs/performance.md](/docs/performance.md).`,
      '',
    );
  }
  if (r.worker) {
    const w = r.worker;
    out.push(
      `**Worker**: ${n0(w.events)} queued events over ${w.phones} phones drained to a local HTTP receiver, concurrency ${w.concurrency}, ${w.rounds} round${w.rounds === 1 ? '' : 's'}, alternated; medians. replyflow's events went through its ingest, with per-phone ordering on (the receiver checks it). The raw workers promise no order; a phone's events being far apart in their queue, they happened not to reorder any.`,
      '',
      '| contender | events/s | worker CPU per event | Redis CPU per event | deliveries out of phone order | rounds (events/s) |',
      '|---|---:|---:|---:|---:|---|',
      ...(Object.keys(w.contenders) as WorkerContender[]).map((c) => {
        const x = w.contenders[c]!;
        const order = c === 'noop' ? '—' : String(Math.max(...x.runs.map((run) => run.outOfOrder)));
        return `| ${x.label} | ${n0(x.eventsPerSecond)} | ${n0(x.workerCpuUs)} µs | ${n0(x.redisCpuUs)} µs | ${order} | ${x.runs.map((run) => n0(run.eventsPerSecond)).join(' / ')} |`;
      }),
      '',
      `replyflow / raw worker = **${n2(w.ratios.replyflowOverRaw)}**, replyflow / BullMQ no-op = ${n2(w.ratios.replyflowOverNoop)}, ` +
        `raw / no-op = ${n2(w.ratios.rawOverNoop)}, replyflow with 2 workers / raw = ${n2(w.ratios.replyflow2OverRaw)}.`,
      '',
      `The raw worker POSTs with undici's \`request\`, as its documentation shows; replyflow dispatches on the same kind of pool with a handler of its own, which costs half the CPU ` +
        `([docs/performance.md](../../docs/performance.md)). With that same POST function, the raw worker's rate is ${n0(w.contenders.rawSameClient.eventsPerSecond)} events/s, ` +
        `and replyflow / raw = **${n2(w.ratios.replyflowOverRawSameClient)}** (rounds: ${w.ratios.perRound.map((p) => n2(p.replyflowOverRawSameClient)).join(', ')}): what replyflow adds beyond the POST.`,
      '',
      ...(w.variantSettings
        ? [
            `The variant is replyflow with 1 worker and ${Object.entries(w.variantSettings).map(([k, v]) => `\`${k}=${v}\``).join(', ')}: ` +
              `variant / replyflow = **${n2(w.ratios.variantOverReplyflow!)}** (rounds: ${w.ratios.perRound.map((p) => n2(p.variantOverReplyflow!)).join(', ')}).`,
            '',
          ]
        : []),
    );
  }
  if (r.redisCost) {
    const c = r.redisCost;
    out.push(
      `**Redis per event** (${n0(c.events)} events over ${c.phones} phones through ingest and one worker; \`INFO memory\` used_memory, \`INFO commandstats\`, commands run inside Lua scripts included):`,
      '',
      '| figure | value |',
      '|---|---:|',
      `| memory per queued event (backlog) | ${n0(c.bytesPerQueuedEvent)} B |`,
      `| memory per completed event, inside the dedupe window (each further event, measured over ${n0(c.extraEvents)} more) | ${n0(c.bytesPerCompletedEventMarginal)} B |`,
      `| memory that does not grow with events (capped event streams, ${c.phones} phones' keys, queue metadata) | ${mb(c.fixedBytes)} |`,
      `| memory per completed event over the first ${n0(c.events)} (both of the above) | ${n0(c.bytesPerCompletedEvent)} B |`,
      `| commands per event: ingest + worker | ${n1(c.ingest.commandsPerEvent)} + ${n1(c.worker.commandsPerEvent)} = ${n1(c.total.commandsPerEvent)} |`,
      `| of which Lua script calls | ${n1(c.ingest.scriptCallsPerEvent)} + ${n1(c.worker.scriptCallsPerEvent)} = ${n1(c.total.scriptCallsPerEvent)} |`,
      `| redis-server CPU per event: ingest + worker | ${n0(c.ingest.redisCpuUsPerEvent)} + ${n0(c.worker.redisCpuUsPerEvent)} = ${n0(c.total.redisCpuUsPerEvent)} µs |`,
      '',
      `What stays in Redis after the drain (\`MEMORY USAGE\`): ${c.keyGroups
        .slice(0, 6)
        .map((g) => `\`${g.pattern}\` ${n0(g.keys)} × ${n0(g.bytes / g.keys)} B`)
        .join(', ')}.`,
      '',
    );
  }
  if (r.soak) {
    const s = r.soak;
    out.push(
      `**Soak**: ${s.rate} webhooks/s for ${s.seconds} s through ingest and one worker; RSS level (median of the samples every 5 s) over the first minute after ${s.warmupSeconds} s (start) and over the last minute (end).`,
      '',
      '| process | RSS start | RSS end | RSS max | growth |',
      '|---|---:|---:|---:|---:|',
      `| ingest | ${mb(s.ingest.startBytes)} | ${mb(s.ingest.endBytes)} | ${mb(s.ingest.maxBytes)} | ${pct(s.ingest.growth)} |`,
      `| worker | ${mb(s.worker.startBytes)} | ${mb(s.worker.endBytes)} | ${mb(s.worker.maxBytes)} | ${pct(s.worker.growth)} |`,
      '',
      `${n0(s.delivered)} of ${n0(s.sent)} delivered, ${s.duplicates} duplicates, ${s.outOfOrder} out of order; webhook latency p50 ${n1(s.p50Ms)} ms, p99 ${n1(s.p99Ms)} ms; ` +
        `Redis used_memory ${mb(s.redisUsedMemory.startBytes)} → ${mb(s.redisUsedMemory.endBytes)} (done records inside the dedupe window).`,
      '',
    );
  }
  if (r.scale) out.push(...renderScaleMarkdown(r.scale), '![scale: events/s by masters and workers](/bench/results/scale.svg)', '');
  out.push('![ingest and worker throughput, and the targets](/bench/results/latest.svg)', '');
  if (r.problems.length > 0) out.push('**Problems seen in this run:**', '', ...r.problems.map((p) => `- ${p}`), '');
  return out.join('\n');
}

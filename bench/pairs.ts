// Pairs: what a setting gains or costs the worker on this machine, told apart
// from the host's drift. Drains of replyflow with one worker as it ships and
// with BENCH_WORKER_VARIANT, back to back, BENCH_PAIRS times, the order
// swapped each pair; the figure is the median of the pairs' ratios. A round of
// the worker section drains six contenders and takes a minute, in which the
// speed of a shared host moves by more than the 5 to 10% a change is worth;
// a pair takes seconds. Runs with BENCH_SECTIONS=pairs; writes pairs.json and
// pairs.md, and leaves latest.* as they were.
import type { BenchContext } from './lib/context.js';
import { progress } from './lib/log.js';
import { median, round } from './lib/stats.js';
import { measure, problemsOf, type WorkerRun } from './worker.js';

export interface PairsResult {
  events: number;
  phones: number;
  concurrency: number;
  variantSettings: Record<string, string>;
  pairs: { pair: number; replyflow: WorkerRun; variant: WorkerRun; ratio: number }[];
  /** variant / replyflow events/s, median of the pairs. */
  ratio: number;
  problems: string[];
}

export async function runPairs(ctx: BenchContext): Promise<PairsResult> {
  const { config } = ctx;
  const variantSettings = config.workerVariant!;
  progress(`pairs: ${config.pairs} pairs of drains of ${config.events} events, replyflow against ${JSON.stringify(variantSettings)}`);
  const pairs: PairsResult['pairs'] = [];
  const problems: string[] = [];
  for (let pair = 1; pair <= config.pairs; pair++) {
    const order = pair % 2 === 1 ? (['replyflow1', 'variant'] as const) : (['variant', 'replyflow1'] as const);
    const runs: Partial<Record<(typeof order)[number], WorkerRun>> = {};
    for (const contender of order) {
      const run = await measure(ctx, contender, pair);
      runs[contender] = run;
      problems.push(...problemsOf(contender, run, config.events));
    }
    const ratio = runs.variant!.eventsPerSecond / runs.replyflow1!.eventsPerSecond;
    pairs.push({ pair, replyflow: runs.replyflow1!, variant: runs.variant!, ratio });
    progress(`pair ${pair}/${config.pairs}: replyflow ${round(runs.replyflow1!.eventsPerSecond)}, variant ${round(runs.variant!.eventsPerSecond)} events/s: ${ratio.toFixed(3)}`);
  }
  return {
    events: config.events,
    phones: config.phones,
    concurrency: config.workerConcurrency,
    variantSettings,
    pairs,
    ratio: median(pairs.map((p) => p.ratio)),
    problems,
  };
}

export function renderPairsMarkdown(p: PairsResult): string[] {
  const ratios = p.pairs.map((x) => x.ratio);
  const settings = Object.entries(p.variantSettings)
    .map(([k, v]) => `\`${k}=${v}\``)
    .join(', ');
  return [
    `**Pairs**: replyflow with 1 worker, as it ships and with ${settings}, each draining ${p.events.toLocaleString('en-US')} events over ${p.phones} phones (concurrency ${p.concurrency} unless the variant sets it), back to back, ${p.pairs.length} times, the order swapped each pair.`,
    '',
    '| pair | replyflow events/s | variant events/s | variant / replyflow | worker CPU an event (replyflow, variant) | Redis CPU an event (replyflow, variant) |',
    '|---:|---:|---:|---:|---:|---:|',
    ...p.pairs.map(
      (x) =>
        `| ${x.pair} | ${round(x.replyflow.eventsPerSecond).toLocaleString('en-US')} | ${round(x.variant.eventsPerSecond).toLocaleString('en-US')} | ${x.ratio.toFixed(3)} | ` +
        `${round(x.replyflow.workerCpuUs)}, ${round(x.variant.workerCpuUs)} µs | ${round(x.replyflow.redisCpuUs)}, ${round(x.variant.redisCpuUs)} µs |`,
    ),
    '',
    `variant / replyflow = **${p.ratio.toFixed(3)}**, median of ${ratios.length} pairs (${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)}).`,
    '',
  ];
}

// Re-renders latest.md and latest.svg from latest.json (after a change to the
// report's layout), without measuring anything: node --import tsx bench/render.ts
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resultsDir } from './lib/procs.js';
import { evaluateTargets, renderMarkdown, writeScaleFiles, type BenchReport, type ScaleReport } from './report.js';
import { renderSvg } from './svg.js';

const report = JSON.parse(readFileSync(join(resultsDir, 'latest.json'), 'utf8')) as BenchReport;
report.targets = evaluateTargets(report);
writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
writeFileSync(join(resultsDir, 'latest.md'), renderMarkdown(report));
writeFileSync(join(resultsDir, 'latest.svg'), renderSvg(report));
console.log('rewrote bench/results/latest.md and latest.svg from latest.json');
const scalePath = join(resultsDir, 'scale.json');
if (existsSync(scalePath)) {
  writeScaleFiles(JSON.parse(readFileSync(scalePath, 'utf8')) as ScaleReport);
  console.log('rewrote bench/results/scale.md and scale.svg from scale.json');
}

// A hand-written SVG of one run: throughput bars for the ingest and worker
// contenders, and each target with the measured value against its limit.
import type { BenchReport, Target } from './report.js';
import { INGEST_CONTENDERS } from './ingest.js';
import type { ScaleResult } from './scale.js';
import { isReplyflow, type WorkerContender } from './worker.js';

const WIDTH = 1060;
const LABEL_W = 400;
const BAR_W = 420;
const ROW_H = 24;
const GREY = '#9aa5b1';
const BLUE = '#3b82c4';
const GREEN = '#3f9b4f';
const RED = '#c8423b';

const esc = (text: string) => text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

interface Row {
  label: string;
  value: number;
  text: string;
  color: string;
  /** A vertical marker (a target), in the row's units. */
  marker?: number;
  /** The row's own scale maximum; bars of a panel share one otherwise. */
  max?: number;
}

function panel(title: string, rows: Row[], y: number): { svg: string; height: number } {
  const shared = Math.max(...rows.map((r) => r.value)) * 1.1 || 1;
  const parts = [`<text x="10" y="${y + 16}" font-size="14" font-weight="bold">${esc(title)}</text>`];
  rows.forEach((row, i) => {
    const top = y + 26 + i * ROW_H;
    const max = row.max ?? shared;
    const w = Math.max(1, Math.min(BAR_W, (row.value / max) * BAR_W));
    const markerW = row.marker === undefined ? 0 : Math.min(BAR_W, (row.marker / max) * BAR_W);
    parts.push(
      `<text x="${LABEL_W - 8}" y="${top + 15}" text-anchor="end">${esc(row.label)}</text>`,
      `<rect x="${LABEL_W}" y="${top + 3}" width="${w.toFixed(1)}" height="${ROW_H - 7}" fill="${row.color}"/>`,
      `<text x="${(LABEL_W + Math.max(w, markerW) + 6).toFixed(1)}" y="${top + 15}">${esc(row.text)}</text>`,
    );
    if (row.marker !== undefined) {
      const x = LABEL_W + markerW;
      parts.push(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="${top}" y2="${top + ROW_H - 1}" stroke="#222" stroke-width="2" stroke-dasharray="3,2"/>`);
    }
  });
  return { svg: parts.join('\n'), height: 26 + rows.length * ROW_H + 14 };
}

function targetRow(t: Target): Row | undefined {
  if (t.value === null) return undefined;
  const text = t.unit === '×' ? `${t.value.toFixed(2)}×` : t.unit === '%' ? `${t.value.toFixed(1)}%` : `${fmt(t.value)} ${t.unit}`;
  const limit = t.unit === '×' ? `${t.limit}×` : t.unit === '%' ? `${t.limit}%` : `${t.limit} ${t.unit}`;
  // Negative growth draws as an empty bar; the text says the value.
  return {
    label: t.name.replace(/ \(.*\)$/, ''),
    value: Math.max(0, t.value),
    text: `${text} (${t.direction === 'min' ? '≥' : t.strict ? '<' : '≤'} ${limit}: ${t.holds ? 'holds' : 'misses'})`,
    color: t.holds ? GREEN : RED,
    marker: t.limit,
    max: Math.max(t.limit, t.value) * 1.25,
  };
}

export function renderSvg(r: BenchReport): string {
  const panels: { title: string; rows: Row[] }[] = [];
  if (r.ingest) {
    const i = r.ingest;
    panels.push({
      title: `Ingest: requests/s at ${i.connections} connections (median of ${i.rounds} rounds)`,
      rows: INGEST_CONTENDERS.map((c) => ({
        label: i.contenders[c].label,
        value: i.contenders[c].rps,
        text: `${fmt(i.contenders[c].rps)}/s, p99 ${i.contenders[c].p99Ms.toFixed(1)} ms`,
        color: c === 'replyflow' ? BLUE : GREY,
      })),
    });
  }
  if (r.worker) {
    const w = r.worker;
    panels.push({
      title: `Worker: events/s draining ${fmt(w.events)} events over ${w.phones} phones (concurrency ${w.concurrency})`,
      rows: Object.entries(w.contenders).map(([c, x]) => ({
        label: x.label,
        value: x.eventsPerSecond,
        text: `${fmt(x.eventsPerSecond)}/s`,
        color: isReplyflow(c as WorkerContender) ? BLUE : GREY,
      })),
    });
  }
  const targets = r.targets.map(targetRow).filter((row): row is Row => row !== undefined);
  if (targets.length > 0) panels.push({ title: 'Targets (dashed line: the limit)', rows: targets });

  let y = 36;
  const body: string[] = [];
  for (const p of panels) {
    const drawn = panel(p.title, p.rows, y);
    body.push(drawn.svg);
    y += drawn.height;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">replyflow benchmark, ${esc(r.startedAt.slice(0, 10))} (${esc(r.machine.before.cores + ' cores, ' + r.machine.before.cpuModel)})</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

const SHADES = ['#9cc3e6', '#3b82c4', '#1f4e79'];

/** bench/results/scale.svg: one bar per masters × workers cell, on one scale. */
export function renderScaleSvg(s: ScaleResult, title: string): string {
  const rows: Row[] = s.cells.map((c) => ({
    label: `${c.masters === 1 ? '1 master (standalone)' : `${c.masters} masters (cluster, ${c.shards} shards)`}, ${c.workers} worker${c.workers === 1 ? '' : 's'}`,
    value: c.eventsPerSecond,
    text: `${fmt(c.eventsPerSecond)}/s (busy ${c.busyCores.toFixed(2)} of ${s.cores} cores)`,
    color: SHADES[Math.max(0, s.workers.indexOf(c.workers)) % SHADES.length] as string,
  }));
  const drawn = panel(`Drain of ${fmt(s.events)} events: events/s by Redis masters and worker processes (median of ${s.rounds})`, rows, 36);
  const noteY = 36 + drawn.height + 4;
  const note = `${s.cores} cores shared by Redis, workers, receiver and benchmark, and other work took a median ${s.otherCores.toFixed(2)} of them: more processes cannot add cores. 2 masters: redis-cli --cluster create needs 3.`;
  const height = noteY + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
    drawn.svg,
    `<text x="10" y="${noteY + 12}" font-size="11" fill="#555">${esc(note)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

// Reads V8 .cpuprofile files (node --cpu-prof): where the time went, as text
// (self time by function, time by package) and as a flame graph SVG.
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { repoRoot } from '../../test/helpers/repo-root.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Tree {
  byId: Map<number, ProfileNode>;
  parent: Map<number, number>;
  /** Self time per node, microseconds. */
  self: Map<number, number>;
  rootId: number;
  totalUs: number;
  idleUs: number;
}

const SPECIAL = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

function load(file: string): Tree {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  // A sample lasts until the next one (as Chrome DevTools counts it).
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of self) {
    totalUs += us;
    if (byId.get(id)?.callFrame.functionName === '(idle)') idleUs += us;
  }
  const rootId = profile.nodes.find((n) => !parent.has(n.id))?.id ?? 1;
  return { byId, parent, self, rootId, totalUs, idleUs };
}

function shortUrl(url: string): string {
  const root = `file://${repoRoot}`;
  return url.startsWith(root) ? url.slice(root.length) : url;
}

function nameOf(frame: CallFrame): string {
  return frame.functionName || '(anonymous)';
}

function frameKey(frame: CallFrame): string {
  if (!frame.url) return nameOf(frame);
  return `${nameOf(frame)}  ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
}

/** Which code a frame belongs to: a package, replyflow's own code, a part of Node. */
function categoryOfUrl(url: string): string | undefined {
  if (!url) return undefined;
  if (url.startsWith('node:')) {
    // node:internal/streams/readable -> node streams, node:_http_outgoing -> node http
    const module = url.slice(5).replace(/^internal\//, '').split('/')[0] as string;
    const part = module.replace(/^_/, '').replace(/_.*$/, '').replace(/^streams$/, 'stream');
    return `node ${part.replace(/^(deps|bootstrap|modules|main)$/, 'start-up (module loading)')}`;
  }
  const modules = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (modules) return modules[1];
  const own = /\/(apps\/[^/]+|packages\/[^/]+|bench)\//.exec(url);
  if (own) return `replyflow ${own[1]}`;
  return shortUrl(url);
}

/** Native and V8 builtin frames (no url) count for the nearest JavaScript frame above them. */
function categoryOf(tree: Tree, id: number): string {
  const frame = tree.byId.get(id)?.callFrame;
  if (frame && SPECIAL.has(frame.functionName)) return frame.functionName;
  for (let at: number | undefined = id; at !== undefined; at = tree.parent.get(at)) {
    const category = categoryOfUrl(tree.byId.get(at)?.callFrame.url ?? '');
    if (category) return category;
  }
  return '(native, no JavaScript caller)';
}

/**
 * The nearest package or replyflow code on the stack: Node's own work (socket
 * writes, streams, crypto) counts for whoever asked for it. Work Node does on
 * its own (an HTTP request arriving, a socket flushing) stays Node's.
 */
function callerOf(tree: Tree, id: number): string {
  const frame = tree.byId.get(id)?.callFrame;
  if (frame && SPECIAL.has(frame.functionName)) return frame.functionName;
  let fallback: string | undefined;
  for (let at: number | undefined = id; at !== undefined; at = tree.parent.get(at)) {
    const category = categoryOfUrl(tree.byId.get(at)?.callFrame.url ?? '');
    if (category && !category.startsWith('node ')) return category;
    fallback ??= category;
  }
  return `${fallback ?? '(native)'}, no package on the stack`;
}

function table(rows: [string, number][], totalUs: number, limit: number): string {
  return rows
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([key, us]) => `  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${key}`)
    .join('\n');
}

/** Top self-time functions, time by package, and the heaviest call paths' functions by inclusive time. */
export function summarizeProfile(file: string, title: string, top = 25): string {
  const tree = load(file);
  const busyUs = tree.totalUs - tree.idleUs;
  const selfByKey = new Map<string, number>();
  const byCategory = new Map<string, number>();
  const byCaller = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of tree.self) {
    const frame = (tree.byId.get(id) as ProfileNode).callFrame;
    if (frame.functionName === '(idle)') continue;
    const key = frameKey(frame);
    selfByKey.set(key, (selfByKey.get(key) ?? 0) + us);
    const category = categoryOf(tree, id);
    byCategory.set(category, (byCategory.get(category) ?? 0) + us);
    const caller = callerOf(tree, id);
    byCaller.set(caller, (byCaller.get(caller) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = tree.parent.get(at)) {
      const f = (tree.byId.get(at) as ProfileNode).callFrame;
      if (!f.url) continue;
      const k = frameKey(f);
      if (!seen.has(k)) {
        seen.add(k);
        inclusive.set(k, (inclusive.get(k) ?? 0) + us);
      }
    }
  }
  return [
    `== ${title}`,
    `   ${relative(repoRoot, resolve(file))}`,
    `   sampled ${(tree.totalUs / 1e6).toFixed(1)} s, busy (not idle) ${(busyUs / 1e6).toFixed(1)} s; percentages are of busy time`,
    '',
    '-- busy time by the code that ran (native and builtin frames count for their JavaScript caller)',
    table([...byCategory], busyUs, 20),
    '',
    '-- busy time by the package that asked for it (Node internals count for the nearest package or replyflow frame)',
    table([...byCaller], busyUs, 15),
    '',
    `-- top ${top} functions by self time`,
    table([...selfByKey], busyUs, top),
    '',
    '-- top 20 JavaScript functions by inclusive time',
    table([...inclusive], busyUs, 20),
    '',
  ].join('\n');
}

const escapeXml = (text: string) => text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);

function colorOf(category: string): string {
  if (category.startsWith('replyflow')) return '#5fb35f';
  if (category.startsWith('node ')) return '#6fa8dc';
  if (category.startsWith('(')) return '#b7b7b7';
  let hash = 0;
  for (const ch of category) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${20 + (hash % 40)}, 85%, ${55 + (hash % 15)}%)`;
}

/** A flame graph (root at the bottom) of the busy time; hover a frame for its figures. */
export function flameGraphSvg(file: string, title: string): string {
  const tree = load(file);
  const totals = new Map<number, number>();
  const totalOf = (id: number): number => {
    const node = tree.byId.get(id) as ProfileNode;
    if (node.callFrame.functionName === '(idle)') return 0;
    let sum = tree.self.get(id) ?? 0;
    for (const child of node.children ?? []) sum += totalOf(child);
    totals.set(id, sum);
    return sum;
  };
  const busy = totalOf(tree.rootId);
  const width = 1200;
  const rowHeight = 16;
  const frames: { x: number; depth: number; w: number; id: number }[] = [];
  const layout = (id: number, x: number, depth: number) => {
    const w = ((totals.get(id) ?? 0) / busy) * width;
    if (w < 0.3) return;
    frames.push({ x, depth, w, id });
    let cx = x;
    for (const child of tree.byId.get(id)?.children ?? []) {
      layout(child, cx, depth + 1);
      cx += ((totals.get(child) ?? 0) / busy) * width;
    }
  };
  layout(tree.rootId, 0, 0);
  const maxDepth = Math.max(...frames.map((f) => f.depth));
  const height = (maxDepth + 1) * rowHeight + 40;
  const rects = frames.map(({ x, depth, w, id }) => {
    const frame = (tree.byId.get(id) as ProfileNode).callFrame;
    const us = totals.get(id) ?? 0;
    const label = frame.functionName === '(root)' ? `all busy time (${(busy / 1e6).toFixed(1)} s)` : nameOf(frame);
    const y = height - (depth + 1) * rowHeight - 4;
    const chars = Math.floor((w - 4) / 6.5);
    const text = chars >= 3 ? (label.length > chars ? `${label.slice(0, chars - 1)}…` : label) : '';
    const tip = `${frameKey(frame)}\n${(us / 1000).toFixed(0)} ms, ${((100 * us) / busy).toFixed(1)}% (self ${((tree.self.get(id) ?? 0) / 1000).toFixed(0)} ms)`;
    return (
      `<g><title>${escapeXml(tip)}</title><rect x="${x.toFixed(1)}" y="${y}" width="${Math.max(0.3, w - 0.3).toFixed(1)}" height="${rowHeight - 1}" fill="${colorOf(categoryOf(tree, id))}"/>` +
      (text ? `<text x="${(x + 2).toFixed(1)}" y="${y + 11.5}">${escapeXml(text)}</text>` : '') +
      '</g>'
    );
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="4" y="16" font-size="13" font-weight="bold">${escapeXml(title)} — green: replyflow, blue: Node internals, orange: packages, grey: V8/GC</text>`,
    ...rects,
    '</svg>',
  ].join('\n');
}

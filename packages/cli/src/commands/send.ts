import { resolve } from 'node:path';
import { loadConfig, signatureHeader, type Config } from '@replyflow/shared';
import { Option, type Command } from 'commander';
import { CommandFailedError } from '../errors.js';
import { printJson, printLine } from '../output.js';
import { parseHttpUrl, parsePositiveInt, parsePositiveNumber } from '../parsers.js';
import { lastSecret } from '../secret-file.js';
import { loadPayloadFiles } from '../send/payloads.js';
import { ProgressBar } from '../send/progress-bar.js';
import { sendAll } from '../send/sender.js';
import type { SendStats } from '../send/stats.js';

type SignMode = 'token' | 'hmac-sha256';

interface SendOptions {
  url: string;
  secret?: string;
  mode?: SignMode;
  count?: number;
  rate?: number;
  concurrency: number;
  unique?: boolean;
  json?: boolean;
}

export const DEFAULT_INGEST_URL = 'http://127.0.0.1:3000/webhooks/notifyer';

export function registerSend(program: Command): void {
  program
    .command('send')
    .description('post Notifyer payload files to an ingest, signed as Notifyer signs them; reports status counts and latency')
    .argument('<files...>', 'payload files (JSON), e.g. a Notifyer webhook body')
    .option('--url <url>', 'the ingest webhook URL', parseHttpUrl, DEFAULT_INGEST_URL)
    .option('--secret <secret>', 'sign with this secret (default: the last line of WEBHOOK_SECRET_FILE)')
    .addOption(new Option('--mode <mode>', 'signature mode (default: SIGNATURE_MODE, else token)').choices(['token', 'hmac-sha256']))
    .option('--count <n>', 'requests in total, cycling through the files (default: each file once)', parsePositiveInt)
    .option('--rate <r>', 'at most this many requests in any second', parsePositiveNumber)
    .option('--concurrency <c>', 'requests in flight at once', parsePositiveInt, 8)
    .option('--unique', 'give each request its own message time, so each is a new event, not a duplicate')
    .option('--json', 'print {"sent", "status": {"<code>"|"error": n}, "latencyMs": {"p50", "p99"}}')
    .action((files: string[], options: SendOptions) => send(files, options));
}

async function send(files: string[], options: SendOptions): Promise<void> {
  const config = loadConfig('cli');
  const payloads = loadPayloadFiles(files, Boolean(options.unique));
  const count = options.count ?? payloads.length;
  const bar = ProgressBar.onTerminal(count);
  const stats = await sendAll({
    url: new URL(options.url),
    payloads,
    count,
    concurrency: options.concurrency,
    rate: options.rate,
    unique: Boolean(options.unique),
    sign: signer(options, config),
    onProgress: bar && ((progress) => bar.update(progress.sent, statusLine(progress))),
  });
  bar?.finish();
  if (options.json) printJson(stats.summary());
  else printReport(stats, options.url);
  if (stats.failed > 0) throw new CommandFailedError(failureLine(stats));
}

/**
 * --mode, else SIGNATURE_MODE (`none`: unsigned), else token. The secret:
 * --secret, else the newest line of WEBHOOK_SECRET_FILE (where `webhooks
 * create` appends Notifyer's), else WEBHOOK_SECRET's last entry.
 */
function signer(options: SendOptions, config: Readonly<Config>): ((body: Buffer) => string) | undefined {
  const mode = options.mode ?? config.signatureMode;
  if (mode === 'none') return undefined;
  const secret = options.secret ?? lastSecret(config.webhookSecretFile) ?? config.webhookSecrets.at(-1);
  if (!secret) {
    throw new CommandFailedError(`no secret to sign with: pass --secret, or put one in WEBHOOK_SECRET_FILE (${resolve(config.webhookSecretFile)})`);
  }
  return (body) => signatureHeader(mode as SignMode, body, secret);
}

function statusLine(stats: SendStats): string {
  return [...stats.status].filter(([key, n]) => n > 0 || key !== 'error').map(([key, n]) => `${key}:${n}`).join(' ');
}

function printReport(stats: SendStats, url: string): void {
  printLine(`Sent ${stats.sent} request${stats.sent === 1 ? '' : 's'} to ${url}`);
  for (const [key, n] of Object.entries(stats.summary().status)) printLine(`  ${key.padEnd(6)} ${n}`);
  const [p50, p90, p99, max] = [50, 90, 99, 100].map((p) => stats.percentile(p));
  printLine(p50 === null ? 'latency: no answers' : `latency ms: p50 ${p50}  p90 ${p90}  p99 ${p99}  max ${max}`);
}

function failureLine(stats: SendStats): string {
  const summary = stats.summary().status;
  const bad = Object.entries(summary).filter(([key, n]) => n > 0 && !/^2\d\d$/.test(key));
  let line = `${stats.failed} of ${stats.sent} requests got no 2xx answer (${bad.map(([key, n]) => `${key}: ${n}`).join(', ')})`;
  if (summary['401']) line += '; 401 means the ingest refused the signature: check --secret, WEBHOOK_SECRET_FILE and --mode';
  if (stats.firstError) line += `; no answer: ${stats.firstError}`;
  return line;
}

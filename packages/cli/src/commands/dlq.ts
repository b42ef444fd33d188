import { layoutOptionsOf, loadConfig, ShardLayouts, maskPhone, type AttemptRecord, type DeadLetterJobData } from '@replyflow/shared';
import type { Command } from 'commander';
import { DeadLetters, type DeadLetterJob } from '../dead-letters.js';
import { CommandFailedError, EXIT_USAGE } from '../errors.js';
import { printJson, printLine, printTable } from '../output.js';
import { connectRedis } from '../redis-connection.js';

interface JsonOption {
  json?: boolean;
}

/** One row of `dlq list --json` (contract section 9). The phone is unmasked: it is the operator's own data. */
export interface DeadLetterRow {
  id: string;
  phone: string;
  workflow: string;
  attempts: number;
  lastError: string | null;
  history: Pick<AttemptRecord, 'at' | 'status' | 'error'>[];
}

const LAST_ERROR_WIDTH = 60;

export function registerDlq(program: Command): void {
  const dlq = program
    .command('dlq')
    .summary('list and replay dead-lettered events')
    .description('dead-lettered events: list them, put them back on their queues (reads REDIS_URL, QUEUE_PREFIX)');

  dlq
    .command('list')
    .description('list dead-lettered events: id, phone (masked), workflow, attempts, last error')
    .option('--json', 'print a JSON array with the full attempt history (phones unmasked)')
    .action((options: JsonOption) => withDeadLetters((deadLetters) => list(deadLetters, options)));

  dlq
    .command('replay')
    .description('put dead-lettered events back on their queues (every workflow entry of each event id)')
    .argument('[ids...]', 'event ids, as `dlq list` shows them')
    .option('--all', 'replay every dead-lettered event')
    .option('--json', 'print {"replayed": [ids]}')
    .action((ids: string[], options: JsonOption & { all?: boolean }, command: Command) => {
      if (Boolean(options.all) === ids.length > 0) {
        command.error('error: give either --all or one or more event ids', { exitCode: EXIT_USAGE, code: 'replyflow.usage' });
      }
      return withDeadLetters((deadLetters) => replay(deadLetters, options.all ? 'all' : ids, options));
    });
}

/** Config and the connection are only touched once a command runs, so `--help` starts nothing. */
async function withDeadLetters(run: (deadLetters: DeadLetters) => Promise<void>): Promise<void> {
  const config = loadConfig('cli');
  const redis = await connectRedis(config);
  const deadLetters = new DeadLetters(redis, await ShardLayouts.read(redis, layoutOptionsOf(config)));
  try {
    await run(deadLetters);
  } finally {
    await deadLetters.close().catch(() => {});
    await redis.quit().catch(() => redis.disconnect());
  }
}

async function list(deadLetters: DeadLetters, options: JsonOption): Promise<void> {
  const rows = (await deadLetters.entries()).map((job) => toRow(job.data));
  if (options.json) return printJson(rows);
  if (rows.length === 0) return printLine('No dead-lettered events.');
  printTable(rows, [
    { header: 'ID', value: (row) => row.id },
    { header: 'PHONE', value: (row) => maskPhone(row.phone) },
    { header: 'WORKFLOW', value: (row) => row.workflow },
    { header: 'ATTEMPTS', value: (row) => String(row.attempts) },
    { header: 'LAST ERROR', value: (row) => truncate(row.lastError ?? '-', LAST_ERROR_WIDTH) },
  ]);
}

async function replay(deadLetters: DeadLetters, ids: readonly string[] | 'all', options: JsonOption): Promise<void> {
  const entries = await deadLetters.entries();
  const selected = ids === 'all' ? entries : select(entries, ids);
  await deadLetters.replay(selected);
  const replayed = [...new Set(selected.map((job) => job.data.eventId))];
  if (options.json) return printJson({ replayed });
  if (replayed.length === 0) return printLine('No dead-lettered events to replay.');
  printLine(`Replayed ${replayed.length} event${replayed.length === 1 ? '' : 's'}:`);
  for (const id of replayed) printLine(`  ${id}`);
}

/** Every id must be known before anything moves: a typo replays nothing. */
function select(entries: readonly DeadLetterJob[], ids: readonly string[]): DeadLetterJob[] {
  const known = new Set(entries.map((job) => job.data.eventId));
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new CommandFailedError(`not in the dead-letter queue: ${unknown.join(', ')}; nothing replayed`);
  }
  const wanted = new Set(ids);
  return entries.filter((job) => wanted.has(job.data.eventId));
}

export function toRow(entry: DeadLetterJobData): DeadLetterRow {
  const history = entry.history ?? [];
  return {
    id: entry.eventId,
    phone: entry.phone,
    workflow: entry.workflow,
    attempts: history.length,
    lastError: history.at(-1)?.error ?? null,
    history: history.map(({ at, status, error }) => ({ at, status, error })),
  };
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

import { loadConfig } from '@replyflow/shared';
import { Option, type Command } from 'commander';
import { CommandFailedError, usageError } from '../errors.js';
import { DEFAULT_NOTIFYER_API_URL, NotifyerApi, NotifyerApiError, notifyerApiSettings, type CreatedWebhook, type WebhookRecord } from '../notifyer-api.js';
import { printJson, printLine, printNote } from '../output.js';
import { parseHttpUrl, parseSeconds } from '../parsers.js';
import { checkSchedule, WAITING_DURATION_PRESETS, type ScheduleSettings } from '../schedule-activity.js';
import { appendSecret, prepareSecretFile, type PreparedSecretFile } from '../secret-file.js';
import { printRecord, printRecords } from '../webhook-output.js';

interface CreateOptions {
  url: string;
  incoming?: boolean;
  outgoing?: boolean;
  scheduleActivity?: boolean;
  waitingDuration?: number;
  signature?: boolean;
  secretFile?: string;
  json?: boolean;
}

interface UpdateOptions {
  url?: string;
  incoming?: boolean;
  outgoing?: boolean;
  enabled?: boolean;
  disabled?: boolean;
  scheduleActivity?: boolean;
  waitingDuration?: number;
  json?: boolean;
}

type Changes = Partial<Pick<WebhookRecord, 'webhooks' | 'enabled' | 'incoming' | 'outgoing' | 'schedule_activity' | 'waiting_duration'>>;

const PRESETS = WAITING_DURATION_PRESETS.join(', ');

export function registerWebhooks(program: Command): void {
  const webhooks = program
    .command('webhooks')
    .summary("manage Notifyer's webhooks: create, list, update, delete")
    .description("Notifyer's webhook management API (reads NOTIFYER_API_URL and NOTIFYER_API_TOKEN from the environment)");
  registerCreate(webhooks);
  webhooks
    .command('list')
    .description('list your webhooks, as Notifyer returns them (never with a secret)')
    .option('--json', 'print the array of records')
    .action(async (options: { json?: boolean }) => printRecords(await api().list(), Boolean(options.json)));
  registerUpdate(webhooks);
  webhooks
    .command('delete')
    .description('delete a webhook')
    .argument('<id>', 'the webhook id, as `webhooks list` shows it')
    .option('--json', 'print {"deleted": "<id>"}')
    .action(async (id: string, options: { json?: boolean }) => {
      await api().remove(id);
      if (options.json) return printJson({ deleted: id });
      printLine(`Deleted webhook ${id}.`);
    });
}

function registerCreate(webhooks: Command): void {
  webhooks
    .command('create')
    .description('register a webhook with Notifyer; with --signature, its one-time secret is appended to the secret file, never shown')
    .requiredOption('--url <url>', 'the endpoint Notifyer will POST messages to, e.g. https://example.com/webhooks/notifyer', parseHttpUrl)
    .option('--incoming', 'send customer messages to it')
    .option('--outgoing', "send the business's own messages to it")
    .option('--schedule-activity', 'turn schedule activity on (needs --waiting-duration)')
    .option('--waiting-duration <seconds>', `schedule activity window; 0 when it is off; dashboard presets: ${PRESETS}`, parseSeconds)
    .option('--signature', 'have Notifyer sign deliveries (X-Webhook-Signature); the secret goes to the secret file')
    .option('--secret-file <file>', 'append the secret here (default: WEBHOOK_SECRET_FILE, else .replyflow/webhook-secret)')
    .option('--json', 'print the created record as JSON')
    .action((options: CreateOptions, command: Command) => create(options, command));
}

function registerUpdate(webhooks: Command): void {
  webhooks
    .command('update')
    .description('change the named fields of a webhook; Notifyer is sent the full record, the other fields as they are')
    .argument('<id>', 'the webhook id, as `webhooks list` shows it')
    .option('--url <url>', 'a new endpoint URL', parseHttpUrl)
    .option('--incoming', 'send customer messages to it')
    .option('--no-incoming', 'stop sending customer messages')
    .option('--outgoing', "send the business's own messages to it")
    .option('--no-outgoing', "stop sending the business's own messages")
    .addOption(new Option('--enabled', 'turn the webhook on').conflicts('disabled'))
    .addOption(new Option('--disabled', 'turn the webhook off'))
    .option('--schedule-activity', 'turn schedule activity on (with --waiting-duration unless it has one)')
    .option('--no-schedule-activity', 'turn schedule activity off (the waiting duration becomes 0)')
    .option('--waiting-duration <seconds>', `schedule activity window; dashboard presets: ${PRESETS}`, parseSeconds)
    .option('--json', 'print the updated record as JSON')
    .action((id: string, options: UpdateOptions, command: Command) => update(id, options, command));
}

/** Read only when a command runs, so `--help` needs no token. */
function api(): NotifyerApi {
  return new NotifyerApi(notifyerApiSettings());
}

async function create(options: CreateOptions, command: Command): Promise<void> {
  const schedule = scheduleForCreate(options, command);
  const settings = notifyerApiSettings();
  const client = new NotifyerApi(settings);
  if (settings.baseUrl === DEFAULT_NOTIFYER_API_URL && new URL(options.url).protocol !== 'https:') {
    printNote('warning: Notifyer expects a full HTTPS URL; it may refuse this one, and would send messages over plain HTTP');
  }
  if (!options.incoming && !options.outgoing) printNote('warning: neither --incoming nor --outgoing: Notifyer will send this webhook no messages');
  if (options.secretFile && !options.signature) printNote('warning: --secret-file without --signature: there will be no secret to write');
  const secretFile = options.signature ? prepareFile(options) : undefined;
  const record = await client.create({
    webhooks: options.url,
    enabled: true,
    incoming: Boolean(options.incoming),
    outgoing: Boolean(options.outgoing),
    schedule_activity: schedule.scheduleActivity,
    waiting_duration: schedule.waitingDuration,
    active_signature: Boolean(options.signature),
  });
  printRecord(record, Boolean(options.json));
  if (record.signature_secret) keepSecret(record, secretFile ?? prepareFile(options));
  else if (options.signature) printNote('warning: Notifyer returned no signature_secret: deliveries to this webhook will not be signed');
}

function scheduleForCreate(options: CreateOptions, command: Command): ScheduleSettings {
  const scheduleActivity = Boolean(options.scheduleActivity);
  if (scheduleActivity && options.waitingDuration === undefined) {
    usageError(command, `--schedule-activity needs --waiting-duration SECONDS (dashboard presets: ${PRESETS})`);
  }
  return checked({ scheduleActivity, waitingDuration: options.waitingDuration ?? 0 }, command);
}

function checked(settings: ScheduleSettings, command: Command): ScheduleSettings {
  const check = checkSchedule(settings);
  if (!check.ok) usageError(command, check.error);
  if (check.warning) printNote(check.warning);
  return settings;
}

function prepareFile(options: CreateOptions): PreparedSecretFile {
  const prepared = prepareSecretFile(options.secretFile ?? loadConfig('cli').webhookSecretFile);
  if (prepared.tightenedFrom !== undefined) {
    printNote(
      `note: ${prepared.path} was mode 0${prepared.tightenedFrom.toString(8)}, open to other users; it is 0600 now. ` +
        'If others use this machine, the secrets already in it may have been read: rotate them.',
    );
  }
  return prepared;
}

/** The secret is shown by Notifyer once: it goes to the file and nowhere else, not even the terminal. */
function keepSecret(record: CreatedWebhook, file: PreparedSecretFile): void {
  let line: number;
  try {
    line = appendSecret(file.path, record.signature_secret!);
  } catch (err) {
    throw new CommandFailedError(
      `webhook ${record.id} was created, but its secret could not be written to ${file.path}: ${(err as Error).message}. ` +
        `Notifyer shows a secret only once: delete the webhook (replyflow webhooks delete ${record.id}) and create it again`,
    );
  }
  printNote(
    `The signature secret of webhook ${record.id} was appended to ${file.path} (line ${line}); it is not shown, and Notifyer will not show it again.\n` +
      `It belongs in WEBHOOK_SECRET_FILE: an ingest started with WEBHOOK_SECRET_FILE=${file.path} (and WEBHOOK_SECRET unset, SIGNATURE_MODE=token) ` +
      'accepts every line of it and re-reads the file when it changes, so no restart is needed.',
  );
  if (loadConfig('cli').webhookSecrets.length > 0) {
    printNote('warning: WEBHOOK_SECRET is set here; an ingest with WEBHOOK_SECRET set ignores the file, so add the new line to WEBHOOK_SECRET there, or unset it');
  }
}

async function update(id: string, options: UpdateOptions, command: Command): Promise<void> {
  const changes = changesFrom(options);
  if (Object.keys(changes).length === 0) {
    usageError(command, 'nothing to change: give --url, --[no-]incoming, --[no-]outgoing, --enabled, --disabled, --[no-]schedule-activity or --waiting-duration');
  }
  // Contradictory flags are a usage error before any request.
  if (changes.schedule_activity === false) checked({ scheduleActivity: false, waitingDuration: changes.waiting_duration ?? 0 }, command);
  const client = api();
  // Notifyer's PATCH replaces the whole row: start from the row as it is now.
  const current = (await client.list()).find((record) => String(record.id) === id);
  if (!current) throw new NotifyerApiError(`no webhook with id ${id}; \`replyflow webhooks list\` shows the ids`, 404);
  const merged = merge(current, changes);
  if ('schedule_activity' in changes || 'waiting_duration' in changes) {
    checked({ scheduleActivity: merged.schedule_activity, waitingDuration: merged.waiting_duration }, command);
  }
  printRecord(await client.update(merged), Boolean(options.json));
}

function changesFrom(options: UpdateOptions): Changes {
  const changes: Changes = {};
  if (options.url !== undefined) changes.webhooks = options.url;
  if (options.incoming !== undefined) changes.incoming = options.incoming;
  if (options.outgoing !== undefined) changes.outgoing = options.outgoing;
  if (options.enabled) changes.enabled = true;
  if (options.disabled) changes.enabled = false;
  if (options.scheduleActivity !== undefined) changes.schedule_activity = options.scheduleActivity;
  if (options.waitingDuration !== undefined) changes.waiting_duration = options.waitingDuration;
  // Turning schedule activity off takes its window with it, as the dashboard does.
  if (changes.schedule_activity === false && changes.waiting_duration === undefined) changes.waiting_duration = 0;
  return changes;
}

/** Rows that report on/off as a boolean `status` rather than `enabled` keep their own field name. */
export function merge(record: WebhookRecord, changes: Changes): WebhookRecord {
  const { signature_secret: _secret, ...merged } = { ...record, ...changes };
  if (changes.enabled !== undefined && !('enabled' in record) && typeof record.status === 'boolean') {
    delete merged.enabled;
    merged.status = changes.enabled;
  }
  return merged;
}

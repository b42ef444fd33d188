import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import type { Logger } from './logger.js';

export interface SecretSource {
  current(): readonly string[];
  close(): void;
}

function readSecretFile(path: string): string[] | undefined {
  try {
    return readFileSync(path, 'utf8')
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter(Boolean);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const reasonOf = (error: unknown): string => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

/**
 * WEBHOOK_SECRET when set; otherwise every line of WEBHOOK_SECRET_FILE, re-read
 * when the file changes so `replyflow webhooks create` (or an operator rotating
 * by hand) takes effect without a restart.
 */
export function loadWebhookSecrets(
  config: Pick<Config, 'webhookSecrets' | 'webhookSecretFile' | 'signatureMode'>,
  logger: Logger,
): SecretSource {
  if (config.webhookSecrets.length > 0) {
    const secrets = config.webhookSecrets;
    return { current: () => secrets, close: () => {} };
  }
  let secrets: string[];
  try {
    secrets = readSecretFile(config.webhookSecretFile) ?? [];
  } catch (error) {
    throw new ConfigError('WEBHOOK_SECRET_FILE', `cannot read ${config.webhookSecretFile}: ${reasonOf(error)}`);
  }
  if (config.signatureMode !== 'none' && secrets.length === 0) {
    throw new ConfigError(
      'WEBHOOK_SECRET',
      `required when SIGNATURE_MODE is ${config.signatureMode} (set it, or put the secret in ${config.webhookSecretFile})`,
    );
  }
  logger.info({ file: config.webhookSecretFile, count: secrets.length }, 'webhook secrets loaded from file');
  // Polling, because editors and `mv` replace the file, which fs.watch loses track of.
  watchFile(config.webhookSecretFile, { interval: 500, persistent: false }, () => {
    let next: string[];
    try {
      next = readSecretFile(config.webhookSecretFile) ?? [];
    } catch (error) {
      // Thrown here, it would be uncaught and stop the ingest; the previous secrets still work.
      logger.warn(
        { file: config.webhookSecretFile, code: reasonOf(error) },
        'webhook secret file cannot be read; keeping the previous secrets',
      );
      return;
    }
    if (next.length === 0) {
      logger.warn({ file: config.webhookSecretFile }, 'webhook secret file is empty or gone; keeping the previous secrets');
      return;
    }
    secrets = next;
    logger.info({ file: config.webhookSecretFile, count: secrets.length }, 'webhook secrets reloaded');
  });
  return { current: () => secrets, close: () => unwatchFile(config.webhookSecretFile) };
}

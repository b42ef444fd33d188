import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout, written asynchronously so a webhook never waits for
 * the terminal or a log shipper (lifecycle.ts flushes before exit). Secrets are
 * redacted wherever a careless caller might pass them.
 */
export function createLogger(service: string, level: string): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'secret',
          'secrets',
          'webhookSecret',
          'forwardSecret',
          'apiKey',
          'headers["x-webhook-signature"]',
          'headers.authorization',
          'config.webhookSecrets',
          'config.forwardSecret',
          'config.notifyerApiKey',
          'config.adminPassword',
        ],
        censor: '[redacted]',
      },
    },
    // pino flushes this destination synchronously when the process exits.
    pino.destination({ dest: 1, sync: false }),
  );
}

/** Keeps the country code and the last three digits: enough to tell conversations apart in logs. */
export function maskPhone(digits: string): string {
  if (digits.length <= 5) return '*'.repeat(digits.length);
  return `${digits.slice(0, 2)}${'*'.repeat(digits.length - 5)}${digits.slice(-3)}`;
}

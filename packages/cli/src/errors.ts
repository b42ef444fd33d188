import { CommanderError, type Command } from 'commander';

/** The command ran and failed (an unknown id, Redis unreachable): one line on stderr, exit 1. */
export class CommandFailedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CommandFailedError';
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/**
 * The exit code for whatever a command threw, after saying what went wrong.
 * Commander has already printed its own messages. It throws code 0 for help
 * and a non-zero code for every usage error, including a missing subcommand
 * (help printed with code 1), so any non-zero code from it means exit 2.
 * Anything else (ConfigError, CommandFailedError, a Redis command that timed
 * out) is a failure: one line, exit 1.
 */
export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  return EXIT_FAILURE;
}

/**
 * A bad combination of flags that commander cannot see by itself (a
 * contradiction, a value only wrong beside another): its message, then exit 2.
 */
export function usageError(command: Command, message: string): never {
  command.error(`error: ${message}`, { exitCode: EXIT_USAGE, code: 'replyflow.usage' });
}

import { ConfigError } from './errors.js';
import type { Logger } from './logger.js';

/** A signal before the process is up: nothing is taken yet, so nothing to drain. */
const exitWhileStarting = (signal: NodeJS.Signals) => {
  process.stderr.write(`${signal} while starting: exiting\n`);
  process.exit(0);
};

/**
 * Runs a process's main function: a ConfigError becomes one line on stderr and
 * exit 1, before anything listens; any other start failure exits 1 too.
 */
export function runMain(main: () => Promise<void>): void {
  process.on('SIGTERM', exitWhileStarting);
  process.on('SIGINT', exitWhileStarting);
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`config error: ${error.message}\n`);
    } else {
      process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exit(1);
  });
}

/**
 * SIGTERM or SIGINT: run `stop` (stop taking work, drain, close Redis) and
 * exit 0; when that takes longer than `timeoutMs`, exit 0 then, leaving the
 * unfinished work to other workers (the contract's stop). A second signal
 * forces exit.
 */
export function stopOnSignals(logger: Logger, timeoutMs: number, stop: () => Promise<void>): void {
  process.off('SIGTERM', exitWhileStarting);
  process.off('SIGINT', exitWhileStarting);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, timeoutMs }, 'stopping: draining in-flight work');
    const timer = setTimeout(() => {
      // Exiting closes the Redis connections; a job left active is taken over once its lock expires.
      logger.warn({ timeoutMs }, 'shutdown timed out: exiting, unfinished work goes to other workers');
      logger.flush?.();
      process.exit(0);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => {
        logger.info('stopped');
        logger.flush?.();
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

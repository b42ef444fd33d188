import { listen } from '@replyflow/shared';
import type { Command } from 'commander';
import { createEmulator } from '../emulator/server.js';
import { CommandFailedError } from '../errors.js';
import { printLine } from '../output.js';
import { parseNonNegativeNumber, parsePort } from '../parsers.js';

interface EmulatorOptions {
  port: number;
  timeScale: number;
}

const HOST = '127.0.0.1';

export function registerEmulator(program: Command): void {
  program
    .command('emulator')
    .summary('a local stand-in for Notifyer, to try everything without an account')
    .description(
      'a local Notifyer on 127.0.0.1: its webhook management API (POST /webhook/dev/create, GET /webhook/dev, ' +
        'PATCH and DELETE /webhook/dev/{id}), POST /send with GET /sent, and POST /emit {"count": N} to deliver ' +
        'N generated messages to every enabled webhook; one line per delivery on stdout',
    )
    .option('--port <port>', 'port to listen on (0: any free port)', parsePort, 4010)
    .option('--time-scale <factor>', 'multiply the retry delays (5 s, 30 s, 2 min ... 12 h) by this; 0.001 runs them all in about 75 s', parseNonNegativeNumber, 1)
    .action((options: EmulatorOptions) => runEmulator(options));
}

/** Runs until SIGINT or SIGTERM, then closes and lets main exit 0. */
async function runEmulator(options: EmulatorOptions): Promise<void> {
  // Before anything is printed: whoever reads "listening" may signal at once.
  const stopSignal = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const emulator = createEmulator({ timeScale: options.timeScale, log: printLine });
  await listen(emulator.server, options.port, HOST).catch((err: NodeJS.ErrnoException) => {
    const hint = err.code === 'EADDRINUSE' ? ': it is in use, pick another with --port' : '';
    throw new CommandFailedError(`cannot listen on ${HOST}:${options.port}${hint} (${err.message})`);
  });
  const { port } = emulator.server.address() as { port: number };
  const root = `http://${HOST}:${port}`;
  printLine(`Notifyer emulator listening on ${root} (retry delays x${options.timeScale}); Ctrl-C stops it`);
  printLine(`  management API: NOTIFYER_API_URL=${root} NOTIFYER_API_TOKEN=<anything> replyflow webhooks ...`);
  printLine(`  deliver messages: curl -X POST ${root}/emit -H 'content-type: application/json' -d '{"count":20}'`);
  printLine(`  auto-replies: NOTIFYER_SEND_URL=${root}/send; what was sent: curl ${root}/sent`);
  await stopSignal;
  printLine('Notifyer emulator stopping');
  await emulator.close();
}

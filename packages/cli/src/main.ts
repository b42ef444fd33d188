#!/usr/bin/env node
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerDlq } from './commands/dlq.js';
import { registerEmulator } from './commands/emulator.js';
import { registerSend } from './commands/send.js';
import { registerWebhooks } from './commands/webhooks.js';
import { exitCodeFor } from './errors.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

// Settings made here before the groups register are inherited by every subcommand.
const program = new Command('replyflow')
  .description('Operate replyflow: Notifyer WhatsApp webhooks in, durable workflows out.')
  .version(version)
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');

registerWebhooks(program);
registerSend(program);
registerDlq(program);
registerEmulator(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeFor(error);
}

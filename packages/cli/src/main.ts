#!/usr/bin/env node
import { createRequire } from 'node:module';
import { Command } from 'commander';
import { registerDlq } from './commands/dlq.js';
import { exitCodeFor } from './errors.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

// Settings made here before the groups register are inherited by every subcommand.
const program = new Command('replyflow')
  .description('Operate replyflow: Notifyer WhatsApp webhooks in, durable workflows out.')
  .version(version)
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');

registerDlq(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeFor(error);
}

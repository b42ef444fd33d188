#!/usr/bin/env node
// Kept in the repository rather than built, so npm links the command at install
// time, before the first build (it skips a bin whose file does not exist yet).
try {
  await import('../dist/main.js');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !String(error.message).includes('dist/main.js')) throw error;
  process.stderr.write('error: replyflow is not built yet: run `npm run build` at the repository root\n');
  process.exitCode = 1;
}

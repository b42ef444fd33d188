import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkSchedule, WAITING_DURATION_PRESETS } from '../../packages/cli/src/schedule-activity.js';
import { appendSecret, lastSecret, prepareSecretFile } from '../../packages/cli/src/secret-file.js';

const dir = mkdtempSync(join(tmpdir(), 'cli-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const mode = (path: string) => statSync(path).mode & 0o777;

describe('schedule activity and waiting duration', () => {
  test('off means 0, anything else is refused', () => {
    assert.deepEqual(checkSchedule({ scheduleActivity: false, waitingDuration: 0 }), { ok: true });
    const refused = checkSchedule({ scheduleActivity: false, waitingDuration: 30 });
    assert.equal(refused.ok, false);
    assert.match((refused as { error: string }).error, /must be 0 when schedule activity is off/);
  });

  test('on: every dashboard preset passes quietly, other values warn', () => {
    assert.equal(WAITING_DURATION_PRESETS.length, 15);
    for (const preset of WAITING_DURATION_PRESETS) assert.deepEqual(checkSchedule({ scheduleActivity: true, waitingDuration: preset }), { ok: true });
    for (const other of [0, 45, 5184001]) {
      const check = checkSchedule({ scheduleActivity: true, waitingDuration: other });
      assert.equal(check.ok, true);
      assert.match((check as { warning: string }).warning, /not one of the dashboard's waiting durations/);
    }
  });
});

describe('the webhook secret file', () => {
  test('a new file is created 0600 in a new folder, one secret a line, appended', () => {
    const file = join(dir, 'a', 'b', 'secret');
    assert.deepEqual(prepareSecretFile(file), { path: file });
    assert.equal(appendSecret(file, 'first'), 1);
    assert.equal(appendSecret(file, 'second'), 2);
    assert.equal(readFileSync(file, 'utf8'), 'first\nsecond\n');
    assert.equal(mode(file), 0o600);
    assert.equal(lastSecret(file), 'second');
  });

  test('a last line without a newline is never merged with the new secret', () => {
    const file = join(dir, 'no-newline');
    writeFileSync(file, 'placeholder', { mode: 0o600 });
    assert.equal(appendSecret(file, 'new'), 2);
    assert.equal(readFileSync(file, 'utf8'), 'placeholder\nnew\n');
  });

  test('a file open to others is tightened to 0600, its content untouched', () => {
    const file = join(dir, 'open');
    writeFileSync(file, 'old\n');
    chmodSync(file, 0o644);
    assert.deepEqual(prepareSecretFile(file), { path: file, tightenedFrom: 0o644 });
    assert.equal(mode(file), 0o600);
    assert.equal(readFileSync(file, 'utf8'), 'old\n');
  });

  test('a folder in the way is refused', () => {
    assert.throws(() => prepareSecretFile(dir), /not a regular file/);
  });

  test('a secret spanning lines is never written; blank lines and CRLF are skipped when reading', () => {
    const file = join(dir, 'crlf');
    assert.throws(() => appendSecret(file, 'a\nb'), /spans lines/);
    writeFileSync(file, 'one\r\ntwo\r\n\r\n');
    assert.equal(lastSecret(file), 'two');
    assert.equal(lastSecret(join(dir, 'missing')), undefined);
  });
});

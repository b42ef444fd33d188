import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './repo-root.js';

export type NotifyerPayload = Record<string, any>;

// The shared folder beside the clone is the source of truth; the copy in test/fixtures keeps a
// lone clone (or a CI checkout without shared/) testable.
const sharedDir = join(repoRoot, '..', 'shared', 'fixtures', 'notifyer');
export const fixturesDir = existsSync(sharedDir) ? sharedDir : join(repoRoot, 'test', 'fixtures', 'notifyer');

/** Fixture names without the .json extension, e.g. "incoming-text". */
export const fixtureNames: string[] = readdirSync(fixturesDir)
  .filter((file) => file.endsWith('.json'))
  .map((file) => file.slice(0, -'.json'.length))
  .sort();

/** The fixture's exact bytes as text (to post as received) and parsed. */
export function loadFixture(name: string): { text: string; json: NotifyerPayload } {
  const file = name.endsWith('.json') ? name : `${name}.json`;
  const text = readFileSync(join(fixturesDir, file), 'utf8');
  return { text, json: JSON.parse(text) as NotifyerPayload };
}

/**
 * A copy with another message time, which makes it a new event (the time is part of the event id).
 * The field follows the payload's direction and generation, as the ingest reads it.
 */
export function withMessageTime(json: NotifyerPayload, seconds: number): NotifyerPayload {
  const outgoing = json.incoming_message === false;
  const [current, legacy] = outgoing
    ? ['bot_last_message_time', 'bot_timestamp']
    : ['user_last_message_time', 'user_timestamp'];
  const field = !(current in json) && legacy in json ? legacy : current;
  return { ...structuredClone(json), [field]: seconds };
}

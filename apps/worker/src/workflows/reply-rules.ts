import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { NotifyerEvent } from '@replyflow/shared';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** A bad REPLY_RULES file: one line naming the file, the rule and the field. The worker exits 1 with it. */
export class RulesError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    // A regex or YAML snippet may carry newlines; the contract promises one line.
    super(`REPLY_RULES ${file}: ${detail}`.replace(/\s*\n\s*/g, ' '));
    this.name = 'RulesError';
  }
}

export interface TextTest {
  matches?: string;
  contains?: string;
  equals?: string;
  ignoreCase?: boolean;
}

export interface LabelsTest {
  any?: string[];
  all?: string[];
  none?: string[];
}

export interface ReplyWhen {
  direction?: NotifyerEvent['direction'];
  messageType?: string;
  text?: TextTest;
  labels?: LabelsTest;
  firstContact?: true;
}

export interface ReplyMessage {
  text: string;
  delayMs?: number;
}

export interface ReplyRule {
  name: string;
  when: ReplyWhen;
  debounceMs?: number;
  reply: ReplyMessage[];
  /** `when.text.matches`, compiled once at load (flag `u`, and `i` when `ignoreCase`). */
  textPattern?: RegExp;
}

export interface ReplyRules {
  rules: ReplyRule[];
}

export interface MatchContext {
  /** The first incoming event replyflow has seen from this phone (the caller remembers phones). */
  firstContact: boolean;
}

/** The body of one `POST NOTIFYER_SEND_URL` (contract section 8). */
export interface NotifyerSendBody {
  to: string;
  type: 'text';
  recipient_type: 'individual';
  messaging_product: 'whatsapp';
  text: { body: string; preview_url: false };
}

// "required" when the key is missing, otherwise what we wanted instead.
const expected = (what: string) => ({
  error: (issue: { input?: unknown }) => (issue.input === undefined ? 'required' : `expected ${what}`),
});

const nonNegativeInt = z.int(expected('a non-negative integer')).min(0, { error: 'expected a non-negative integer' });
const nonEmptyString = z.string(expected('a non-empty string')).min(1, { error: 'expected a non-empty string' });
// Labels compare trimmed: an empty list or a blank label would make its test always or never hold.
const label = z.string(expected('a string')).refine((text) => text.trim() !== '', { error: 'expected a non-blank label' });
const labelList = z.array(label, expected('an array of strings')).min(1, { error: 'expected a non-empty list of labels' });

const textTestSchema = z
  .strictObject(
    {
      matches: z.string(expected('a string (a regular expression)')).optional(),
      // "" is in every text: the test would always hold.
      contains: nonEmptyString.optional(),
      equals: z.string(expected('a string')).optional(),
      ignoreCase: z.boolean(expected('true or false')).optional(),
    },
    expected('an object with matches, contains or equals'),
  )
  .refine((test) => test.matches !== undefined || test.contains !== undefined || test.equals !== undefined, {
    error: 'expected at least one of matches, contains, equals',
  });

const whenSchema = z.strictObject(
  {
    direction: z.enum(['incoming', 'outgoing'], expected('incoming or outgoing')).optional(),
    messageType: nonEmptyString.optional(),
    text: textTestSchema.optional(),
    labels: z
      .strictObject({ any: labelList.optional(), all: labelList.optional(), none: labelList.optional() }, expected('an object with any, all or none'))
      .refine((test) => test.any !== undefined || test.all !== undefined || test.none !== undefined, {
        error: 'expected at least one of any, all, none',
      })
      .optional(),
    firstContact: z.literal(true, { error: 'expected true (leave it out otherwise)' }).optional(),
  },
  expected('an object of tests'),
);

const ruleSchema = z.strictObject(
  {
    name: nonEmptyString,
    // A bare `when:` in YAML is null; it means the same as an empty `when`.
    when: whenSchema.nullish().transform((when) => when ?? {}),
    debounceMs: nonNegativeInt.optional(),
    reply: z
      .array(
        z.strictObject({ text: nonEmptyString, delayMs: nonNegativeInt.optional() }, expected('an object with text')),
        expected('a list of messages'),
      )
      .min(1, { error: 'expected at least one message' }),
  },
  expected('an object with name, when and reply'),
);

const fileSchema = z.strictObject(
  { rules: z.array(ruleSchema, expected('a non-empty list')).min(1, { error: 'expected a non-empty list' }) },
  expected('an object with a rules list'),
);

/** Reads and validates a REPLY_RULES file (.yaml, .yml or .json). Throws `RulesError` on any problem. */
export function loadReplyRules(path: string): ReplyRules {
  const document = readDocument(path);
  const parsed = fileSchema.safeParse(document);
  if (!parsed.success) throw new RulesError(path, describeIssue(parsed.error.issues[0], document));
  const rules = parsed.data.rules.map((rule, index) => compileRule(path, rule, index));
  rejectDuplicateNames(path, rules);
  return { rules };
}

function readDocument(path: string): unknown {
  const extension = extname(path).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(extension)) {
    throw new RulesError(path, 'expected a .yaml, .yml or .json file');
  }
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new RulesError(path, `cannot read file (${code})`);
  }
  try {
    // Windows editors start files with a byte-order mark; the YAML parser skips it, JSON.parse does not.
    return extension === '.json' ? JSON.parse(source.replace(/^\uFEFF/, '')) : parseYaml(source);
  } catch (error) {
    // yaml's messages continue with a code frame after the first line.
    const reason = ((error as Error).message.split('\n')[0] ?? '').replace(/:$/, '');
    throw new RulesError(path, `not valid ${extension === '.json' ? 'JSON' : 'YAML'}: ${reason}`);
  }
}

type ZodIssue = z.core.$ZodIssue;

function describeIssue(issue: ZodIssue | undefined, document: unknown): string {
  if (!issue) return 'invalid';
  const path = [...issue.path];
  const unknownKey = issue.code === 'unrecognized_keys' ? issue.keys : undefined;
  if (unknownKey?.[0] !== undefined) path.push(unknownKey[0]);
  const message = unknownKey
    ? `unknown key${unknownKey.length > 1 ? ` (also ${unknownKey.slice(1).join(', ')})` : ''}`
    : issue.message;
  if (path[0] === 'rules' && typeof path[1] === 'number') {
    const rest = formatPath(path.slice(2));
    return `${ruleLabel(path[1], document)}: ${rest ? `${rest}: ` : ''}${message}`;
  }
  const field = formatPath(path);
  return field ? `${field}: ${message}` : message;
}

function ruleLabel(index: number, document: unknown): string {
  const rules = (document as { rules?: unknown[] } | null)?.rules;
  const name = Array.isArray(rules) ? (rules[index] as { name?: unknown } | null)?.name : undefined;
  return typeof name === 'string' && name !== '' ? `rule ${index + 1} ${JSON.stringify(name)}` : `rule ${index + 1}`;
}

// Positions count from 1 like "rule 2", so `reply#2` is the second message.
function formatPath(path: PropertyKey[]): string {
  return path.reduce<string>((text, segment) => {
    if (typeof segment === 'number') return `${text}#${segment + 1}`;
    return text ? `${text}.${String(segment)}` : String(segment);
  }, '');
}

function compileRule(file: string, rule: ReplyRule, index: number): ReplyRule {
  const matches = rule.when.text?.matches;
  if (matches === undefined) return rule;
  try {
    return { ...rule, textPattern: compilePattern(matches, rule.when.text?.ignoreCase) };
  } catch (error) {
    const reason = (error as Error).message.replace(/^Invalid regular expression: /, '');
    throw new RulesError(file, `rule ${index + 1} ${JSON.stringify(rule.name)}: when.text.matches: not a valid regex: ${reason}`);
  }
}

// Unicode mode: WhatsApp text is full of emoji and accents, which `.`, classes and `\\p{…}` must see as characters.
function compilePattern(matches: string, ignoreCase: boolean | undefined): RegExp {
  return new RegExp(matches, ignoreCase ? 'iu' : 'u');
}

function rejectDuplicateNames(file: string, rules: ReplyRule[]): void {
  const seen = new Map<string, number>();
  rules.forEach((rule, index) => {
    const first = seen.get(rule.name);
    if (first !== undefined) {
      throw new RulesError(file, `rule ${index + 1} ${JSON.stringify(rule.name)}: name: duplicate of rule ${first + 1}`);
    }
    seen.set(rule.name, index);
  });
}

/** The first rule whose every `when` test holds for the event, or undefined: no rule, no reply. */
export function matchRule(rules: ReplyRules, event: NotifyerEvent, context: MatchContext): ReplyRule | undefined {
  return rules.rules.find((rule) => ruleHolds(rule, event, context));
}

function ruleHolds(rule: ReplyRule, event: NotifyerEvent, context: MatchContext): boolean {
  const { when } = rule;
  // Without an explicit direction only incoming events count: the business's own replies come back
  // as outgoing webhooks and must not trigger a rule by accident.
  if ((when.direction ?? 'incoming') !== event.direction) return false;
  if (when.messageType !== undefined && when.messageType !== event.messageType) return false;
  if (when.text && !textHolds(when.text, rule.textPattern, event.text ?? '')) return false;
  if (when.labels && !labelsHold(when.labels, event.labels)) return false;
  if (when.firstContact && !(context.firstContact || event.referral !== null)) return false;
  return true;
}

function textHolds(test: TextTest, pattern: RegExp | undefined, text: string): boolean {
  const fold = (value: string) => (test.ignoreCase ? value.toLowerCase() : value);
  if (test.equals !== undefined && fold(text) !== fold(test.equals)) return false;
  if (test.contains !== undefined && !fold(text).includes(fold(test.contains))) return false;
  // Loaded rules carry the compiled pattern; a hand-built rule gets one compiled here.
  const regex = pattern ?? (test.matches !== undefined ? compilePattern(test.matches, test.ignoreCase) : undefined);
  return regex === undefined || regex.test(text);
}

function labelsHold(test: LabelsTest, eventLabels: string[]): boolean {
  const normalize = (label: string) => label.trim().toLowerCase();
  const present = new Set(eventLabels.map(normalize));
  const has = (label: string) => present.has(normalize(label));
  if (test.any && !test.any.some(has)) return false;
  if (test.all && !test.all.every(has)) return false;
  if (test.none && test.none.some(has)) return false;
  return true;
}

/** The exact JSON body Notifyer expects for one text message (contract section 8). */
export function notifyerSendBody(phone: string, text: string): NotifyerSendBody {
  return {
    to: phone,
    type: 'text',
    recipient_type: 'individual',
    messaging_product: 'whatsapp',
    text: { body: text, preview_url: false },
  };
}

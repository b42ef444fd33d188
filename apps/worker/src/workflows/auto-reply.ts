import { defineWorkflow, type RateLimit, type Workflow, type WorkflowEvent } from '@replyflow/workflow';
import type { Agent } from 'undici';
import { postJson } from '../engine/http-post.js';
import { matchRule, notifyerSendBody, type ReplyRules } from './reply-rules.js';

export interface AutoReplyOptions {
  rules: ReplyRules;
  sendUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
  agent: Agent;
  rateLimit: RateLimit | undefined;
}

export const AUTO_REPLY_WORKFLOW = 'auto-reply';

/**
 * Answers through Notifyer with the first matching rule's messages, in order,
 * each its delay after the previous one was accepted. Every message is its own
 * durable step, so retries, restarts and duplicates never send one twice.
 */
export function autoReplyWorkflow(options: AutoReplyOptions): Workflow {
  const ownTexts = new Set(options.rules.rules.flatMap((rule) => rule.reply.map((message) => message.text)));
  // Our replies come back as outgoing webhooks: one carrying a text the rules
  // send, which no person typed, is our own, and answering it from an outgoing
  // rule would answer itself, without end.
  const isOwnReply = (event: WorkflowEvent) =>
    event.direction === 'outgoing' && event.raw.was_message_by_human !== true && ownTexts.has(event.text ?? '');
  const ruleFor = (event: WorkflowEvent) => (isOwnReply(event) ? undefined : matchRule(options.rules, event, { firstContact: event.firstContact }));
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.apiKey) headers.authorization = options.apiKey;
  const send = (phone: string, text: string) =>
    postJson(options.agent, options.sendUrl, headers, JSON.stringify(notifyerSendBody(phone, text)), options.timeoutMs);

  return defineWorkflow({
    name: AUTO_REPLY_WORKFLOW,
    match: (event) => ruleFor(event) !== undefined,
    rateLimit: options.rateLimit,
    debounce: (event) => {
      const rule = ruleFor(event);
      return rule?.debounceMs ? { key: `${rule.name}:${event.phone}`, ms: rule.debounceMs } : undefined;
    },
    run: async (event, step) => {
      const rule = ruleFor(event);
      if (!rule) return;
      for (const [index, message] of rule.reply.entries()) {
        if (message.delayMs) await step.sleep(`delay-${index}`, message.delayMs);
        await step.run(`send-${index}`, () => send(event.phone, message.text));
      }
    },
  });
}

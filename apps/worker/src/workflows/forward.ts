import { randomBytes } from 'node:crypto';
import type { NotifyerEvent } from '@replyflow/shared';
import { Webhook } from 'standardwebhooks';
import type { Agent } from 'undici';
import { postJson } from '../engine/http-post.js';
import type { Workflow, WorkflowContext } from '../engine/workflow.js';

export interface ForwardOptions {
  url: string;
  secret: string | undefined;
  timeoutMs: number;
  agent: Agent;
}

/** The body of section 5 of the contract. */
export function forwardBody(event: NotifyerEvent, receivedAt: number): string {
  return JSON.stringify({
    id: event.id,
    type: event.direction === 'incoming' ? 'message.received' : 'message.sent',
    receivedAt: new Date(receivedAt).toISOString(),
    data: {
      phone: event.phone,
      direction: event.direction,
      messageTime: event.messageTime,
      messageType: event.messageType,
      text: event.text,
      labels: event.labels,
      lastMessages: event.lastMessages,
      raw: event.raw,
    },
  });
}

/** POSTs every event to FORWARD_URL, signed the Standard Webhooks way when FORWARD_SECRET is set. */
export function forwardWorkflow(options: ForwardOptions): Workflow {
  const signer = options.secret ? new Webhook(options.secret) : undefined;
  return {
    name: 'forward',
    match: () => true,
    run: async (event: NotifyerEvent, context: WorkflowContext) => {
      const body = forwardBody(event, context.receivedAt);
      const now = new Date();
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'webhook-id': event.id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        // One trace per event, one span per attempt.
        traceparent: `00-${context.traceId}-${randomBytes(8).toString('hex')}-01`,
      };
      if (signer) headers['webhook-signature'] = signer.sign(event.id, now, body);
      return postJson(options.agent, options.url, headers, body, options.timeoutMs);
    },
  };
}

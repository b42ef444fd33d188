import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type Config } from '@replyflow/shared';
import { isWorkflow, type Workflow } from '@replyflow/workflow';
import type { Agent } from 'undici';
import { autoReplyWorkflow } from '../workflows/auto-reply.js';
import { forwardWorkflow } from '../workflows/forward.js';
import { loadReplyRules, RulesError } from '../workflows/reply-rules.js';

const limit = (name: string, perSecond: number) => (perSecond > 0 ? { name, perSecond } : undefined);

/** The module named by WORKFLOWS: its default export (one workflow or a list), or every exported workflow. */
async function loadUserWorkflows(path: string): Promise<Workflow[]> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError('WORKFLOWS', `cannot load ${path}: ${(error as Error).message.split('\n')[0]}`);
  }
  const exported = module.default !== undefined ? [module.default].flat() : Object.values(module);
  const workflows = exported.filter(isWorkflow);
  if (workflows.length === 0) throw new ConfigError('WORKFLOWS', `${path} exports no workflow (use defineWorkflow)`);
  return workflows;
}

/** The built-in workflows the configuration asks for, then the user's. */
export async function loadWorkflows(config: Config, agent: Agent): Promise<Workflow[]> {
  const workflows: Workflow[] = [];
  if (config.forwardUrl) {
    workflows.push(
      forwardWorkflow({
        url: config.forwardUrl,
        secret: config.forwardSecret,
        timeoutMs: config.forwardTimeoutMs,
        agent,
        rateLimit: limit('forward', config.forwardRateLimit),
      }),
    );
  }
  if (config.replyRules && config.notifyerSendUrl) {
    let rules;
    try {
      rules = loadReplyRules(config.replyRules);
    } catch (error) {
      if (error instanceof RulesError) throw new ConfigError('REPLY_RULES', error.message.replace(/^REPLY_RULES /, ''));
      throw error;
    }
    workflows.push(
      autoReplyWorkflow({
        rules,
        sendUrl: config.notifyerSendUrl,
        apiKey: config.notifyerApiKey,
        timeoutMs: config.forwardTimeoutMs,
        agent,
        rateLimit: limit('send', config.sendRateLimit),
      }),
    );
  }
  if (config.workflows) workflows.push(...(await loadUserWorkflows(config.workflows)));
  const names = workflows.map((w) => w.name);
  const repeated = names.find((name, index) => names.indexOf(name) !== index);
  if (repeated) throw new ConfigError('WORKFLOWS', `two workflows are named "${repeated}"`);
  return workflows;
}

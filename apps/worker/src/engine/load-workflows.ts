import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, type Config } from '@replyflow/shared';
import { workflowProblem, type Workflow } from '@replyflow/workflow';
import type { Agent } from 'undici';
import { AUTO_REPLY_WORKFLOW, autoReplyWorkflow } from '../workflows/auto-reply.js';
import { FORWARD_WORKFLOW, forwardWorkflow } from '../workflows/forward.js';
import { loadReplyRules, RulesError } from '../workflows/reply-rules.js';

const limit = (name: string, perSecond: number) => (perSecond > 0 ? { name, perSecond } : undefined);

// Reserved even when not configured: turning FORWARD_URL on later must not collide with a user's queue.
const BUILT_IN_NAMES = [FORWARD_WORKFLOW, AUTO_REPLY_WORKFLOW];

// The repository root (from apps/worker/{src,dist}/engine/): its node_modules provides @replyflow/workflow.
const appFolder = fileURLToPath(new URL('../../../../', import.meta.url));

const workflowPackage = new URL('.', import.meta.resolve('@replyflow/workflow')).href;

/** Why importing the module failed, in one line, with what the user needs to find or fix it. */
function importFailure(path: string, error: unknown): string {
  const { name, message, code, stack } = error as NodeJS.ErrnoException;
  const reason = `${name}: ${message.split('\n')[0]}`;
  if (code === 'ERR_MODULE_NOT_FOUND' && message.includes("'@replyflow/")) {
    return `${reason} (a module importing @replyflow/workflow must be inside ${appFolder}, where npm installed it)`;
  }
  // Node reports where a syntax error is only on stderr, not in the error it throws.
  if (name === 'SyntaxError') return `${reason} (\`node --check ${path}\` shows the line)`;
  // The first frame in the user's code: defineWorkflow's own frame says nothing about which call was wrong.
  const frames = stack?.match(/file:\/\/[^\s)]+:\d+:\d+/g) ?? [];
  const where = frames.find((frame) => !frame.startsWith(workflowPackage));
  return where ? `${reason} (at ${where.slice('file://'.length)})` : reason;
}

function checkedWorkflow(path: string, where: string, value: unknown): Workflow {
  const problem = workflowProblem(value);
  if (problem) throw new ConfigError('WORKFLOWS', `${path}, ${where}: ${problem}`);
  const { name } = value as Workflow;
  if (BUILT_IN_NAMES.includes(name)) throw new ConfigError('WORKFLOWS', `${path}, ${where}: workflow name "${name}" is taken by a built-in workflow`);
  return value as Workflow;
}

/**
 * The module named by WORKFLOWS: every export is a workflow or a list of them,
 * and all of them load; anything else is an error, not silently skipped.
 */
async function loadUserWorkflows(path: string): Promise<Workflow[]> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError('WORKFLOWS', `cannot load ${path}: ${importFailure(path, error)}`);
  }
  // A set: one workflow exported twice (`export const vip = …; export default vip`) runs once.
  const workflows = new Set<Workflow>();
  for (const [exportName, value] of Object.entries(module)) {
    const label = exportName === 'default' ? 'export default' : `export "${exportName}"`;
    if (!Array.isArray(value)) workflows.add(checkedWorkflow(path, label, value));
    else value.forEach((item, index) => workflows.add(checkedWorkflow(path, `${label}, item ${index + 1}`, item)));
  }
  if (workflows.size === 0) throw new ConfigError('WORKFLOWS', `${path} exports no workflow (use defineWorkflow)`);
  return [...workflows];
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

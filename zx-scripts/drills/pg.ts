// The controller's side of pg-agent.ts: runs it inside an app host's network namespace with the lab's settings.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { $ } from 'zx';
import type { Inventory } from '../lib/inventory.ts';
import { repoRoot } from '../lab/lab.ts';
import { stateDir } from '../lab/state.ts';
import type { AgentConfig } from './pg-agent.ts';

const AGENT = join(repoRoot, 'zx-scripts/drills/pg-agent.ts');

export function agentConfig(inventory: Inventory): AgentConfig {
  return {
    pki: join(stateDir, 'pki', 'lab'),
    members: inventory.hosts.filter((h) => h.groups.includes('postgres')).map((h) => ({ name: h.name, address: h.address })),
    haproxy: { rw: 5000, ro: 5001 },
    patroniPort: 8008,
  };
}

function agentArgs(host: string, args: string[]): string[] {
  return ['netns', 'exec', host, process.execPath, '--import', 'tsx', AGENT, ...args];
}

function agentEnv(inventory: Inventory): NodeJS.ProcessEnv {
  return { ...process.env, OMS_AGENT_CONFIG: JSON.stringify(agentConfig(inventory)) };
}

/** Runs one agent command to its end and parses its JSON answer. */
export async function agent<T>(inventory: Inventory, host: string, args: string[], input?: string): Promise<T> {
  const result = await $({ env: agentEnv(inventory), cwd: repoRoot, ...(input === undefined ? {} : { input }) })`ip ${agentArgs(host, args)}`.nothrow().quiet();
  if (result.exitCode !== 0) throw new Error(`pg-agent ${args[0] ?? ''} on ${host} failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as T;
}

/** Starts the write load; events arrive as JSON lines on the child's stdout until it gets SIGTERM. */
export function startAgent(inventory: Inventory, host: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn('ip', agentArgs(host, args), { cwd: repoRoot, env: agentEnv(inventory), stdio: 'pipe' });
}

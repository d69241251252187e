// The controller's side of the drill agents (pg-agent.ts, kafka-agent.ts, redis-agent.ts): runs one inside an app host's network
// namespace with the lab's settings, either to its end (one JSON answer) or as a load streaming JSON lines.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { $ } from 'zx';
import type { Inventory } from '../lib/inventory.ts';
import { writeEventOf, type Load, type WriteEvent } from '../load/events.ts';
import { repoRoot } from '../lab/lab.ts';
import { stateDir } from '../lab/state.ts';
import type { AgentConfig } from './pg-agent.ts';
import type { KafkaAgentConfig } from './kafka-agent.ts';
import type { RedisAgentConfig } from './redis-agent.ts';
import type { GatewayAgentConfig } from './gateway-agent.ts';
import { labIdpKey } from '../lab/catalog.ts';
import { portSetting, setting } from '../lib/settings.ts';
import { clientAddresses } from '../load/addresses.ts';

export interface AgentKind {
  name: string;
  script: string;
  config(inventory: Inventory): object;
}

/** The lab's PKI folder on the controller (what roles/pki installs on the hosts comes from here). */
export const labPki = (): string => join(stateDir, 'pki', 'lab');
const groupHosts = (inventory: Inventory, group: string) => inventory.hosts.filter((h) => h.groups.includes(group));

export const PG_AGENT: AgentKind = {
  name: 'pg-agent',
  script: join(repoRoot, 'zx-scripts/drills/pg-agent.ts'),
  config: (inventory): AgentConfig => ({
    pki: labPki(),
    members: groupHosts(inventory, 'postgres').map((h) => ({ name: h.name, address: h.address })),
    haproxy: { rw: portSetting('haproxy', 'haproxy_rw_port'), ro: portSetting('haproxy', 'haproxy_ro_port') },
    patroniPort: portSetting('patroni', 'patroni_restapi_port'),
  }),
};

/** The lab's generated secret (inventories/lab/group_vars/all/secrets.yml), made by the first site.yml run. */
export function labSecret(name: string): string {
  const file = join(stateDir, 'secrets', name);
  if (!existsSync(file)) throw new Error(`${file} is missing: provision the lab first (npm run lab -- up)`);
  return readFileSync(file, 'utf8').trim();
}

/** roles/kafka's client listener (SASL_SSL) */
export const KAFKA_CLIENT_PORT = portSetting('kafka', 'kafka_client_port');
export const KAFKA_DRILL_TOPIC = 'oms.drills';

export const KAFKA_AGENT: AgentKind = {
  name: 'kafka-agent',
  script: join(repoRoot, 'zx-scripts/drills/kafka-agent.ts'),
  config: (inventory): KafkaAgentConfig => ({
    pki: labPki(),
    brokers: groupHosts(inventory, 'kafka').map((h) => `${h.address}:${KAFKA_CLIENT_PORT}`),
    certIdentity: 'order-service',
    topic: KAFKA_DRILL_TOPIC,
    user: 'drill-agent',
    password: labSecret('kafka-drill-agent'),
  }),
};

export const REDIS_SENTINEL_PORT = portSetting('redis_sentinel', 'redis_sentinel_port');
export const REDIS_MASTER_NAME = String(setting('redis', 'redis_master_name'));

export const REDIS_AGENT: AgentKind = {
  name: 'redis-agent',
  script: join(repoRoot, 'zx-scripts/drills/redis-agent.ts'),
  config: (inventory): RedisAgentConfig => ({
    pki: labPki(),
    sentinels: groupHosts(inventory, 'redis_sentinel').map((h) => `${h.address}:${REDIS_SENTINEL_PORT}`),
    masterName: REDIS_MASTER_NAME,
    certIdentity: 'order-service',
    user: 'drill-agent',
    password: labSecret('redis-drill-agent'),
  }),
};

export const GATEWAY_AGENT: AgentKind = {
  name: 'gateway-agent',
  script: join(repoRoot, 'zx-scripts/drills/gateway-agent.ts'),
  config: (inventory): GatewayAgentConfig => {
    if (!inventory.gatewayVip || !inventory.gatewayName) throw new Error('the inventory has no gateway VIP and name');
    return {
      pki: labPki(),
      vip: inventory.gatewayVip,
      name: inventory.gatewayName,
      sourceAddresses: clientAddresses(inventory).users,
      idpKey: labIdpKey(),
    };
  },
};

function agentArgs(kind: AgentKind, host: string, args: string[]): string[] {
  return ['netns', 'exec', host, process.execPath, '--import', 'tsx', kind.script, ...args];
}

function agentEnv(kind: AgentKind, inventory: Inventory): NodeJS.ProcessEnv {
  return { ...process.env, OMS_AGENT_CONFIG: JSON.stringify(kind.config(inventory)) };
}

/** Runs one agent command to its end and parses its JSON answer. */
export async function runAgent<T>(kind: AgentKind, inventory: Inventory, host: string, args: string[], input?: string): Promise<T> {
  const result = await $({ env: agentEnv(kind, inventory), cwd: repoRoot, ...(input === undefined ? {} : { input }) })`ip ${agentArgs(kind, host, args)}`.nothrow().quiet();
  if (result.exitCode !== 0) throw new Error(`${kind.name} ${args[0] ?? ''} on ${host} failed: ${result.stderr.trim()}`);
  return JSON.parse(result.stdout) as T;
}

/** Starts an agent's load; it streams JSON lines on stdout until it gets SIGTERM. */
export function startAgent(kind: AgentKind, inventory: Inventory, host: string, args: string[]): ChildProcessWithoutNullStreams {
  return spawn('ip', agentArgs(kind, host, args), { cwd: repoRoot, env: agentEnv(kind, inventory), stdio: 'pipe' });
}

/**
 * Hands each JSON line of a started agent to `onLine`; stop() sends SIGTERM, waits for the agent's last lines
 * (SIGKILL after `graceMs`) and fails when it did not exit cleanly.
 */
export function streamAgent(child: ChildProcessWithoutNullStreams, onLine: (line: unknown) => void, graceMs = 15_000): { stop(): Promise<void> } {
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) onLine(JSON.parse(line));
  });
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  // 'close', not 'exit': the last lines may still be in the pipe when the process has exited
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return {
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      if (buffered.trim()) onLine(JSON.parse(buffered));
      if (code !== 0) throw new Error(`the load exited with ${String(code)}: ${stderr}`);
    },
  };
}


export interface StreamedLoadOptions {
  graceMs?: number;
  onOther?: (line: { kind?: string; ids?: string[] }) => void;
  afterStop?: () => void;
}

/**
 * A drill's load streamed as JSON lines by a started process: its `write` lines (or every line, for a process that
 * writes only those) become the load's events; any other line goes to `onOther`; `afterStop` may refuse a load that
 * ended without its final report.
 */
export function streamedLoad(child: ChildProcessWithoutNullStreams, options: StreamedLoadOptions = {}): Load {
  const events: WriteEvent[] = [];
  const stream = streamAgent(child, (line) => {
    const event = writeEventOf(line);
    if (event) events.push(event);
    else options.onOther?.(line as { kind?: string; ids?: string[] });
  }, options.graceMs);
  return {
    events: () => events,
    async stop() {
      await stream.stop();
      options.afterStop?.();
      return events;
    },
  };
}

/** A drill's load run by an agent on a lab host (streamedLoad). */
export function agentLoad(kind: AgentKind, inventory: Inventory, host: string, args: string[], options: StreamedLoadOptions = {}): Load {
  return streamedLoad(startAgent(kind, inventory, host, args), options);
}

// Where the lab keeps its state, and the journal of everything it creates on the machine.
// The journal is written BEFORE each resource is created, so a lab killed at any point (even SIGKILL)
// can be torn down completely by the next `up` or `down`.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const stateDir = process.env['OMS_LAB_STATE'] ?? '/var/lib/omslab';
export const cacheDir = process.env['OMS_CACHE'] ?? '/var/cache/omslab';

export const paths = {
  journal: join(stateDir, 'journal.jsonl'),
  ready: join(stateDir, 'ready.json'),
  lock: join(stateDir, 'lock'),
  ssh: join(stateDir, 'ssh'),
  sshKey: join(stateDir, 'ssh', 'id_ed25519'),
  knownHosts: join(stateDir, 'ssh', 'known_hosts'),
  hosts: join(stateDir, 'hosts'),
  logs: join(stateDir, 'logs'),
  aptProxy: join(stateDir, 'apt-proxy'),
  aptCache: join(cacheDir, 'apt'),
  images: join(cacheDir, 'images'),
  hostDir: (host: string) => join(stateDir, 'hosts', host),
  hostRoot: (host: string) => join(stateDir, 'hosts', host, 'root'),
};

/** Something the lab made that `down` must remove. Processes are found by their command line (see teardown). */
export type Resource =
  | { kind: 'nft-table'; family: string; name: string }
  | { kind: 'link'; name: string }
  | { kind: 'netns'; name: string }
  | { kind: 'mount'; path: string }
  | { kind: 'dir'; path: string }
  | { kind: 'cgroup'; path: string };

export function record(resource: Resource): void {
  mkdirSync(stateDir, { recursive: true });
  appendFileSync(paths.journal, JSON.stringify(resource) + '\n', { flush: true });
}

export function journal(): Resource[] {
  if (!existsSync(paths.journal)) return [];
  return readFileSync(paths.journal, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Resource];
      } catch {
        return []; // a line cut short by a kill mid-write: its resource was not created yet
      }
    });
}

export function clearJournal(): void {
  rmSync(paths.journal, { force: true });
  rmSync(paths.ready, { force: true });
}

export interface ReadyState {
  inventoryDir: string;
  inventoryDigest: string;
  readyAt: string;
  hosts: Record<string, { nspawnPid: number }>;
}

export function readReady(): ReadyState | undefined {
  if (!existsSync(paths.ready)) return undefined;
  return JSON.parse(readFileSync(paths.ready, 'utf8')) as ReadyState;
}

export function writeReady(state: ReadyState): void {
  writeFileSync(paths.ready, JSON.stringify(state, null, 2) + '\n');
}

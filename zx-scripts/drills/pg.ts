// pg-agent.ts run from the controller (agent.ts): the PostgreSQL drills, the bench and the e2e tests use it.
import type { Inventory } from '../lib/inventory.ts';
import { PG_AGENT, runAgent } from './agent.ts';

/** Runs one pg-agent command to its end and parses its JSON answer. */
export function agent<T>(inventory: Inventory, host: string, args: string[], input?: string): Promise<T> {
  return runAgent<T>(PG_AGENT, inventory, host, args, input);
}

// The lab's email provider (roles/mail_sink, services/mail-sink) as the drills and tests see it: its API, asked from
// the controller inside the sink host's network namespace over HTTPS (the lab CA) with its bearer token.
import { join } from 'node:path';
import { $ } from 'zx';
import type { Inventory } from '../lib/inventory.ts';
import { stateDir } from '../lab/state.ts';
import { labSecret } from './agent.ts';
import { portSetting } from '../lib/settings.ts';

export const MAIL_SINK_CONTROL_PORT = portSetting('mail_sink', 'mail_sink_control_port');

export interface SinkMessage {
  seq: number;
  at: string;
  messageId: string | null;
  orderId: string | null;
  eventId: string | null;
  eventType: string | null;
  subject: string | null;
  to: string[];
}

function sinkHost(inventory: Inventory): { name: string; address: string; fqdn: string } {
  const host = inventory.hosts.find((h) => h.groups.includes('mail_sink'));
  if (!host) throw new Error('the inventory has no mail_sink host');
  return { name: host.name, address: host.address, fqdn: `${host.name}.${inventory.domain}` };
}

/** One call of the sink's API (GET, or PUT with a JSON body); its JSON answer. */
export async function sinkApi<T>(inventory: Inventory, path: string, put?: unknown): Promise<T> {
  const host = sinkHost(inventory);
  const url = `https://${host.fqdn}:${String(MAIL_SINK_CONTROL_PORT)}${path}`;
  const args = ['--silent', '--show-error', '--fail-with-body', '--max-time', '10',
    '--resolve', `${host.fqdn}:${String(MAIL_SINK_CONTROL_PORT)}:${host.address}`,
    '--cacert', join(stateDir, 'pki', 'lab', 'trust-bundle.pem'),
    '--header', `authorization: Bearer ${labSecret('mail-sink-control')}`,
    ...(put === undefined ? [] : ['--request', 'PUT', '--header', 'content-type: application/json', '--data', JSON.stringify(put)]), url];
  const r = await $`ip netns exec ${host.name} curl ${args}`.nothrow().quiet();
  if (r.exitCode !== 0) throw new Error(`mail sink ${path}: ${(r.stderr || r.stdout).trim()}`);
  return JSON.parse(r.stdout) as T;
}

/** The emails the sink holds for an order. */
export async function emailsForOrder(inventory: Inventory, orderId: string): Promise<SinkMessage[]> {
  return (await sinkApi<{ messages: SinkMessage[] }>(inventory, `/messages?orderId=${encodeURIComponent(orderId)}`)).messages;
}

/** How many messages the sink holds now (the next ones have higher sequence numbers). */
export async function sinkCount(inventory: Inventory): Promise<number> {
  return (await sinkApi<{ messages: number }>(inventory, '/stats')).messages;
}

/** The messages the sink accepted after its first `after`, in the order it accepted them. */
export async function sinkMessagesAfter(inventory: Inventory, after: number): Promise<SinkMessage[]> {
  const all: SinkMessage[] = [];
  const PAGE = 10_000;
  for (let from = after; ; from += PAGE) {
    const { messages } = await sinkApi<{ messages: SinkMessage[] }>(inventory, `/messages?after=${String(from)}&limit=${String(PAGE)}`);
    all.push(...messages);
    if (messages.length < PAGE) return all;
  }
}

/** Emails per event id among the messages the sink accepted after the first `after`. */
export async function emailsByEvent(inventory: Inventory, after: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const m of await sinkMessagesAfter(inventory, after)) if (m.eventId !== null) counts.set(m.eventId, (counts.get(m.eventId) ?? 0) + 1);
  return counts;
}

export interface EmailAudit {
  figures: { events: number; emails: number; missing: number; duplicates: number };
  problems: string[];
}

/**
 * Exactly one email per event, counted once the system has settled: every event `events()` lists has an email among
 * those accepted after `after`, no send is in progress or waiting for a retry (`inFlight()`: the notification service's
 * inbox), and the count of the events' emails has not moved for `quietMs`. Only then is every email of every event
 * counted, so a second copy still on its way (a consumer that woke up, a retry) is seen. `events` is asked again on
 * every round: events may still be made meanwhile (an order the recovery sweep resolves). After `settleMs` it counts
 * what there is and says what had not settled.
 */
export async function auditEmails(inventory: Inventory, after: number, events: () => Promise<string[]>, inFlight: () => Promise<number>,
  settleMs = 150_000, quietMs = 5000): Promise<EmailAudit> {
  const deadline = Date.now() + settleMs;
  let total = -1;
  let stableSince = Date.now();
  for (;;) {
    const [ids, counts, pending] = await Promise.all([events(), emailsByEvent(inventory, after), inFlight()]);
    const missing = ids.filter((id) => !counts.has(id));
    const emails = ids.reduce((n, id) => n + (counts.get(id) ?? 0), 0);
    if (emails !== total) { total = emails; stableSince = Date.now(); }
    const settled = missing.length === 0 && pending === 0 && Date.now() - stableSince >= quietMs;
    if (settled || Date.now() > deadline) {
      const duplicates = ids.reduce((n, id) => n + Math.max(0, (counts.get(id) ?? 0) - 1), 0);
      const problems = [
        ...(missing.length > 0 ? [`${String(missing.length)} of ${String(ids.length)} events have no email ${String(Math.round(settleMs / 1000))} s after the load (e.g. ${missing.slice(0, 3).join(', ')})`] : []),
        ...(pending > 0 ? [`${String(pending)} sends still in progress or waiting for a retry ${String(Math.round(settleMs / 1000))} s after the load`] : []),
        ...(duplicates > 0 ? [`${String(duplicates)} emails sent twice`] : []),
      ];
      return { figures: { events: ids.length, emails, missing: missing.length, duplicates }, problems };
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

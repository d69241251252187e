// How the sink answers, changeable at run time for drills and tests: accept; tempfail (451: the provider is having
// trouble, senders retry later); a delay before each answer to DATA (a slow provider), or to MAIL FROM (one slow to
// take a sender's envelope, so that a sender is held before a byte of its email went out); recipients refused for good
// (550: an address the provider knows to be bad, so senders give up on that message). `accounts` limits tempfail and
// the delays to the senders logged in as one of them (the shop's notification service, while the operator's alert
// relay, the same sink on the lab, keeps working); without it they apply to every sender.
import { z } from 'zod';

export const behaviourSchema = z.strictObject({
  mode: z.enum(['accept', 'tempfail']),
  delayMs: z.number().int().min(0).max(120_000),
  envelopeDelayMs: z.number().int().min(0).max(120_000).optional(),
  rejectRecipients: z.array(z.string().min(1).max(254)).max(100),
  accounts: z.array(z.string().min(1).max(254)).min(1).max(20).optional(),
});

export type Behaviour = z.infer<typeof behaviourSchema>;

export const NORMAL: Behaviour = { mode: 'accept', delayMs: 0, rejectRecipients: [] };

/** Whether tempfail and the delays apply to a sender logged in as `user` */
export function affects(behaviour: Behaviour, user: unknown): boolean {
  return behaviour.accounts === undefined || (typeof user === 'string' && behaviour.accounts.includes(user));
}

/** A recipient refused for good: an exact address, or an "@domain" entry for the whole domain (case-insensitive). */
export function refuses(behaviour: Behaviour, address: string): boolean {
  const a = address.toLowerCase();
  return behaviour.rejectRecipients.some((r) => {
    const entry = r.toLowerCase();
    return entry.startsWith('@') ? a.endsWith(entry) : a === entry;
  });
}

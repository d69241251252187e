// The order events the outbox relay of the order service publishes (services/order-service/src/outbox/relay.ts):
// { id, type, occurredAt, data }, the event id also in the `event-id` header and the order id as the key. Anything
// that does not parse into one of these is a poison message: it goes to the dead-letter topic, never blocks the rest.
import { z } from 'zod';

export const EVENT_TYPES = ['order.created', 'order.confirmed', 'order.payment-failed', 'order.cancelled', 'order.refunded', 'order.shipped', 'order.delivered'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const line = z.object({ productId: z.string().min(1), quantity: z.number().int().positive(), unitPriceCents: z.number().int().nonnegative() });

export const orderEventSchema = z.object({
  id: z.uuid(),
  type: z.enum(EVENT_TYPES),
  occurredAt: z.iso.datetime({ offset: true }),
  data: z.object({
    orderId: z.uuid(),
    customerId: z.string().min(1).max(100),
    /** where the customer is told: the order keeps the address the customer signed in with */
    customerEmail: z.email(),
    status: z.string().min(1),
    totalCents: z.number().int().nonnegative(),
    currency: z.string().length(3),
    lines: z.array(line).optional(),
    /** order.refunded: the provider's reference of the refund */
    refundReference: z.string().min(1).max(200).optional(),
  }),
});

export type OrderEvent = z.infer<typeof orderEventSchema>;

export class PoisonMessage extends Error {
  override name = 'PoisonMessage';
}

/** Parses a message value; throws PoisonMessage naming what is wrong. */
export function parseEvent(value: Buffer | null): OrderEvent {
  if (value === null || value.length === 0) throw new PoisonMessage('empty message');
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch (error) {
    throw new PoisonMessage(`not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const result = orderEventSchema.safeParse(json);
  if (!result.success) throw new PoisonMessage(`not an order event: ${result.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ')}`);
  return result.data;
}

/** The Message-ID of the email for an event: the same event always makes the same Message-ID. */
export function messageIdFor(eventId: string, domain: string): string {
  return `<${eventId}@${domain}>`;
}

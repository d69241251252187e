// The order events as the notification service takes them: the schema is the kit's one (services/common,
// order-events.ts). Anything that does not parse into one is a poison message: it goes to the dead-letter topic, never
// blocks the rest.
import { orderEventSchema, type OrderEvent } from '@oms/service-common/order-events';

export { EVENT_TYPES, orderEventSchema, type EventType, type OrderEvent } from '@oms/service-common/order-events';

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

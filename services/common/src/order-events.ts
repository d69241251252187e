// The order events, as the order service's outbox relay publishes them (services/order-service/src/outbox/relay.ts)
// and every consumer reads them: { id, type, occurredAt, data }, the event id also in the `event-id` header and the
// order id as the key. The data is written by the order service's SQL functions (migrations/0004_order_functions.sql,
// 0007) and its refunds: the order service's tests parse every event they consume with this schema, the notification
// service parses every message with it. One schema, so a field added on one side and not the other fails a test.
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

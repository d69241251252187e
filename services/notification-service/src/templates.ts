// One email per event type: subject, plain text and HTML, from the event alone (no lookups, so a redelivered event
// renders the same email). Values from the event are escaped in the HTML part.
import type { EventType, OrderEvent } from './events.ts';

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

interface Wording {
  subject: (ref: string) => string;
  lead: string;
  next: string;
}

const WORDING: Record<EventType, Wording> = {
  'order.created': { subject: (r) => `We received your order ${r}`, lead: 'Thank you: we received your order and are taking the payment.', next: 'We will write again once the payment is through.' },
  'order.confirmed': { subject: (r) => `Your order ${r} is confirmed`, lead: 'Your payment went through and your order is confirmed.', next: 'We will tell you when it ships.' },
  'order.payment-failed': { subject: (r) => `Payment for your order ${r} failed`, lead: 'Your payment was declined, so the order is closed and nothing was charged.', next: 'You are welcome to order again with another payment method.' },
  // only what has happened: a refund is its own event (order.refunded), sent once the provider has made it
  'order.cancelled': { subject: (r) => `Your order ${r} is cancelled`, lead: 'Your order is cancelled.', next: 'If a payment was taken for it, we will refund it and write to you when we have.' },
  'order.refunded': { subject: (r) => `Your payment for order ${r} is refunded`, lead: 'We have refunded the payment for your cancelled order.', next: 'The amount goes back to the payment method you used.' },
  'order.shipped': { subject: (r) => `Your order ${r} has shipped`, lead: 'Your order is on its way.', next: 'We will tell you when it is delivered.' },
  'order.delivered': { subject: (r) => `Your order ${r} was delivered`, lead: 'Your order was delivered.', next: 'Thank you for shopping with us.' },
};

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export function money(cents: number, currency: string): string {
  return new Intl.NumberFormat('en-GB', { style: 'currency', currency }).format(cents / 100);
}

/** The short reference customers see: the first block of the order id. */
export const orderRef = (orderId: string): string => orderId.slice(0, 8).toUpperCase();

export function render(event: OrderEvent): RenderedEmail {
  const wording = WORDING[event.type];
  const ref = orderRef(event.data.orderId);
  const total = money(event.data.totalCents, event.data.currency);
  const lines = (event.data.lines ?? []).map((l) => ({ text: `${String(l.quantity)} x ${l.productId}  ${money(l.unitPriceCents * l.quantity, event.data.currency)}`, product: l.productId, quantity: l.quantity, amount: money(l.unitPriceCents * l.quantity, event.data.currency) }));
  const text = [
    wording.lead,
    '',
    `Order ${ref} (${event.data.orderId})`,
    ...lines.map((l) => `  ${l.text}`),
    `Total: ${total}`,
    ...(event.data.refundReference ? [`Refund reference: ${event.data.refundReference}`] : []),
    '',
    wording.next,
    '',
  ].join('\n');
  const html = `<!doctype html><html><body>
<p>${escapeHtml(wording.lead)}</p>
<p>Order <strong>${escapeHtml(ref)}</strong> (${escapeHtml(event.data.orderId)})</p>
${lines.length > 0 ? `<table>${lines.map((l) => `<tr><td>${String(l.quantity)} x ${escapeHtml(l.product)}</td><td>${escapeHtml(l.amount)}</td></tr>`).join('')}</table>` : ''}
<p>Total: <strong>${escapeHtml(total)}</strong></p>
${event.data.refundReference ? `<p>Refund reference: ${escapeHtml(event.data.refundReference)}</p>` : ''}
<p>${escapeHtml(wording.next)}</p>
</body></html>
`;
  return { subject: wording.subject(ref), text, html };
}

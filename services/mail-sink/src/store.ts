// What the sink accepted: every message appended to a JSON-lines file (and flushed to disk) before the SMTP answer
// says 250, so a message the sender saw accepted survives the sink being killed; read back whole at start.
// Queries count by Message-ID (the notification service derives it from the event id: the same event sent twice is
// the same Message-ID twice) and by order (the X-Oms-Order-Id header).
import { closeSync, existsSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { messageIdOf, parseHeaders } from './headers.ts';

export interface StoredMessage {
  /** 1, 2, ... in the order accepted */
  seq: number;
  at: string;
  /** SMTP envelope */
  from: string;
  to: string[];
  messageId: string | null;
  orderId: string | null;
  eventId: string | null;
  eventType: string | null;
  subject: string | null;
  size: number;
  raw: string;
}

export interface SinkStats {
  /** messages accepted */
  messages: number;
  /** distinct Message-IDs among them */
  messageIds: number;
  /** messages beyond the first with the same Message-ID */
  duplicates: number;
  /** messages accepted without a well-formed Message-ID */
  withoutMessageId: number;
}

export class MessageStore {
  private readonly messages: StoredMessage[] = [];
  private readonly byMessageId = new Map<string, StoredMessage[]>();
  private readonly byOrder = new Map<string, StoredMessage[]>();
  private fd: number | undefined;

  constructor(private readonly file: string) {
    if (existsSync(file)) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (line.trim() === '') return;
        try {
          this.index(JSON.parse(line) as StoredMessage);
        } catch (error) {
          // only the last line can be torn (killed mid-write, before its 250 went out): anything else is corruption
          if (i < lines.length - 1 && lines.slice(i + 1).some((l) => l.trim() !== '')) {
            throw new Error(`${file}:${String(i + 1)}: not a stored message (${error instanceof Error ? error.message : String(error)})`);
          }
        }
      });
    }
    this.fd = openSync(file, 'a', 0o600);
  }

  /** Keeps a message durably; returns what was stored. */
  add(envelope: { from: string; to: string[] }, raw: string): StoredMessage {
    if (this.fd === undefined) throw new Error('the message store is closed');
    const headers = parseHeaders(raw);
    const message: StoredMessage = {
      seq: this.messages.length + 1,
      at: new Date().toISOString(),
      from: envelope.from,
      to: envelope.to,
      messageId: messageIdOf(headers) ?? null,
      orderId: headers.get('x-oms-order-id') ?? null,
      eventId: headers.get('x-oms-event-id') ?? null,
      eventType: headers.get('x-oms-event-type') ?? null,
      subject: headers.get('subject') ?? null,
      size: Buffer.byteLength(raw),
      raw,
    };
    writeSync(this.fd, JSON.stringify(message) + '\n');
    fdatasyncSync(this.fd);
    this.index(message);
    return message;
  }

  withMessageId(id: string): StoredMessage[] {
    return this.byMessageId.get(id) ?? [];
  }

  forOrder(orderId: string): StoredMessage[] {
    return this.byOrder.get(orderId) ?? [];
  }

  /** Messages after `afterSeq`, at most `limit` (paging through everything). */
  list(afterSeq: number, limit: number): StoredMessage[] {
    return this.messages.slice(afterSeq, afterSeq + limit);
  }

  stats(): SinkStats {
    let withoutMessageId = 0;
    for (const m of this.messages) if (m.messageId === null) withoutMessageId++;
    const counted = this.messages.length - withoutMessageId;
    return { messages: this.messages.length, messageIds: this.byMessageId.size, duplicates: counted - this.byMessageId.size, withoutMessageId };
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private index(message: StoredMessage): void {
    this.messages.push(message);
    if (message.messageId !== null) this.byMessageId.set(message.messageId, [...this.withMessageId(message.messageId), message]);
    if (message.orderId !== null) this.byOrder.set(message.orderId, [...this.forOrder(message.orderId), message]);
  }
}

// The request id of each request: the gateway's X-Request-Id when it is a valid one, else one made here. It is in
// every log line of the request, in its problem documents, and in the events its transactions write (the outbox's
// request_id, the Kafka header request-id), so one request is found in every log it touched.
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ids = new WeakMap<Request, string>();

/** The request's id: the one it came with when valid, else a new one; the same for the request's whole life. */
export function assignRequestId(req: Request): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  ids.set(req, id);
  return id;
}

export function requestIdOf(req: Request): string | undefined {
  return ids.get(req);
}

// Errors that mean "PostgreSQL cannot be reached right now" (a failover, a restart, HAProxy switching the leader):
// the request is answered 503 with Retry-After, never 500. Anything else stays an internal error.

/** SQLSTATE classes and codes of a server going away or refusing work for now. */
const UNAVAILABLE_STATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting, or a standby not yet promoted)
  '25006', // read_only_sql_transaction: connected to a standby during a failover
]);

const NETWORK = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH)$/;
const MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/;

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_STATES.has(code) || code.startsWith('08') || NETWORK.test(code))) return true;
  return typeof message === 'string' && MESSAGES.test(message);
}

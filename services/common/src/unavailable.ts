// Errors that mean "PostgreSQL cannot be reached right now" (a failover, a restart, HAProxy switching the leader):
// the request is answered 503 with Retry-After, never 500. So are the refusals of a database that is there but cannot
// do the work now (a statement timeout, a lost serialization race, out of connections). Anything else stays an
// internal error.

/** SQLSTATE classes and codes of a server going away or refusing work for now. */
const UNAVAILABLE_STATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting, or a standby not yet promoted)
  '25006', // read_only_sql_transaction: connected to a standby during a failover
  '57014', // query_canceled: the statement timeout ended it (the database is too busy for now)
  '40001', // serialization_failure: a concurrent transaction won; the same request can succeed again
  '40P01', // deadlock_detected: as above
  '55P03', // lock_not_available: lock_timeout
]);
/** SQLSTATE classes as a whole: 08 connection exception, 53 insufficient resources (too many connections, disk full) */
const UNAVAILABLE_CLASSES = ['08', '53'];

const NETWORK = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH)$/;
const MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly/;

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_STATES.has(code) || UNAVAILABLE_CLASSES.includes(code.slice(0, 2)) || NETWORK.test(code))) return true;
  return typeof message === 'string' && MESSAGES.test(message);
}

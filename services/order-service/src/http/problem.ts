// One error type for the whole service, and one translation into RFC 9457 problem documents: every 4xx has a stable
// `type` a client can branch on (the same `urn:oms:problem:` names the gateway uses for the errors it answers itself).
// A 5xx never carries internals; the request id ties it to the log line that does.
export const PROBLEM_TYPE_BASE = 'urn:oms:problem:';

export const PROBLEMS = {
  'bad-request': { status: 400, title: 'Bad Request' },
  'validation-failed': { status: 400, title: 'Validation Failed' },
  'idempotency-key-required': { status: 400, title: 'Idempotency-Key Required' },
  unauthorized: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  'not-found': { status: 404, title: 'Not Found' },
  'method-not-allowed': { status: 405, title: 'Method Not Allowed' },
  'request-in-flight': { status: 409, title: 'Request In Flight' },
  'version-conflict': { status: 409, title: 'Version Conflict' },
  'transition-not-allowed': { status: 409, title: 'Transition Not Allowed' },
  'out-of-stock': { status: 409, title: 'Out Of Stock' },
  'payment-declined': { status: 402, title: 'Payment Declined' },
  'payload-too-large': { status: 413, title: 'Payload Too Large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported Media Type' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency-Key Reused' },
  'unknown-product': { status: 422, title: 'Unknown Product' },
  internal: { status: 500, title: 'Internal Server Error' },
  unavailable: { status: 503, title: 'Service Unavailable' },
} as const;

export type ProblemName = keyof typeof PROBLEMS;

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  requestId?: string;
  [extension: string]: unknown;
}

/** The service's error: a problem name, a detail for the client, and optional extension members (e.g. `errors`). */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  constructor(readonly problem: ProblemName, readonly detail: string, readonly extensions: Record<string, unknown> = {}) {
    super(`${problem}: ${detail}`);
    this.status = PROBLEMS[problem].status;
  }
}

/** What body-parsing middleware (body-parser / raw-body) and the router (a path that is not valid percent-encoding) throw. */
interface FrameworkError {
  status?: unknown;
  type?: unknown;
}

function fromFramework(error: unknown): ApiError | undefined {
  if (error instanceof URIError) return new ApiError('bad-request', 'the path is not valid percent-encoding (UTF-8)');
  if (typeof error !== 'object' || error === null) return undefined;
  const { type, status } = error as FrameworkError;
  if (type === 'entity.parse.failed') return new ApiError('bad-request', 'the body is not valid JSON');
  if (type === 'entity.too.large') return new ApiError('payload-too-large', 'the body is too large');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new ApiError('unsupported-media-type', 'the body must be UTF-8 JSON');
  if (typeof status === 'number' && status >= 400 && status < 500 && typeof type === 'string') return new ApiError('bad-request', 'the body could not be read');
  return undefined;
}

/**
 * PostgreSQL's data exceptions (SQLSTATE class 22: a value out of range, not valid for its type, a string too long):
 * a request's value the checks before the database let through. The client's to fix, so a 400; the database's own
 * words stay in the log (they name columns and types).
 */
function fromDatabase(error: unknown): ApiError | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code } = error as { code?: unknown };
  if (typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code)) return new ApiError('bad-request', 'a value in the request is out of range or not valid for its field');
  return undefined;
}

/**
 * Turns anything thrown while handling a request into a problem document. `internal` is true when the error was not
 * one the service meant to answer with (the caller logs it with its stack).
 */
export function toProblem(error: unknown, context: { instance?: string; requestId?: string } = {}): { document: ProblemDocument; internal: boolean } {
  const known = error instanceof ApiError ? error : fromFramework(error) ?? fromDatabase(error);
  const problem = known ?? new ApiError('internal', 'the request failed; the request id finds it in the logs');
  const { title, status } = PROBLEMS[problem.problem];
  return {
    document: {
      ...problem.extensions,
      type: `${PROBLEM_TYPE_BASE}${problem.problem}`,
      title,
      status,
      detail: problem.detail,
      ...(context.instance === undefined ? {} : { instance: context.instance }),
      ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
    },
    internal: known === undefined,
  };
}

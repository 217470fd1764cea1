// API refusals: an HTTP status, a stable code and a sentence for people. The
// handler turns any ApiFailure (or coded LetterlockError) into
// { error: code, message } and never echoes request content back.

export class ApiFailure extends Error {
  /** Seconds, sent as Retry-After (429 and 503 answers). */
  retryAfter: number | undefined;

  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export const notFound = (what = 'Not found.') => new ApiFailure(404, 'NOT_FOUND', what);
export const unauthorized = (message = 'Sign in to the archive first.') => new ApiFailure(401, 'UNAUTHORIZED', message);
export const forbidden = (message: string) => new ApiFailure(403, 'FORBIDDEN', message);
export const badRequest = (message: string) => new ApiFailure(400, 'BAD_REQUEST', message);

/** A server-wide cap is reached (not this client's fault): 503 with Retry-After. */
export function busy(message: string, retryAfterSeconds: number): ApiFailure {
  const e = new ApiFailure(503, 'BUSY', message);
  e.retryAfter = Math.max(1, Math.ceil(retryAfterSeconds));
  return e;
}

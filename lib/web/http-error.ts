import { DanError } from '../errors.js';

/** The body of every error answer of the API: a stable code (the DanError codes) and one line saying why. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export interface HttpError {
  status: number;
  body: ErrorBody;
}

const STATUS_OF_CODE: Partial<Record<string, number>> = {
  DAN_BAD_INPUT: 400,
  DAN_BAD_CONFIG: 400,
  DAN_UNKNOWN_DOMAIN: 400,
  DAN_UNKNOWN_TASK: 404,
  DAN_NOT_FOUND: 404,
  DAN_UNAUTHORIZED: 401,
  DAN_ILLEGAL_TRANSITION: 409,
  DAN_REDIS_UNREACHABLE: 503,
};

/**
 * Translates what a handler threw into an HTTP answer: a DanError by its code; one of Fastify's own client errors
 * (body too large, malformed JSON, wrong content type) as bad input with its status; anything else a 500 whose
 * message says only that it failed (the details go to the log, never to the client).
 */
export function httpErrorOf(error: unknown): HttpError {
  if (error instanceof DanError) {
    return { status: STATUS_OF_CODE[error.code] ?? 500, body: { error: { code: error.code, message: error.message } } };
  }
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { status, body: { error: { code: 'DAN_BAD_INPUT', message: (error as Error).message } } };
  }
  return { status: 500, body: { error: { code: 'DAN_INTERNAL', message: 'internal error (see the server log)' } } };
}

import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const errorStatus = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  rate_limited: 429,
  internal: 500,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof errorStatus;

export interface ErrorDetail {
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: ErrorDetail[] };
}

/** The one error the app throws; `onError` renders it in the contract's shape. */
export class AppError extends HTTPException {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: {
      details?: ErrorDetail[];
      headers?: Record<string, string>;
      /** Only where the contract names a status outside the code table (426 on /ws). */
      status?: ContentfulStatusCode;
    } = {},
  ) {
    super(options.status ?? errorStatus[code], { message });
  }

  toBody(): ErrorBody {
    const { details } = this.options;
    return { error: { code: this.code, message: this.message, ...(details ? { details } : {}) } };
  }
}

const codeByStatus = new Map<number, ErrorCode>(
  Object.entries(errorStatus).map(([code, status]) => [status, code as ErrorCode]),
);

/** Maps anything thrown to an `AppError`; unknown errors become a generic 500 and are logged. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof HTTPException && err.status < 500) {
    const code = codeByStatus.get(err.status) ?? "bad_request";
    return new AppError(code, err.message || code.replace(/_/g, " "));
  }
  console.error(`unhandled error: ${describe(err)}`);
  return new AppError("internal", "internal server error");
}

export function renderError(c: Context, err: unknown): Response {
  const appError = toAppError(err);
  const headers: Record<string, string> = { ...appError.options.headers };
  if (appError.code === "unauthorized") headers["WWW-Authenticate"] = "Bearer";
  return c.json(appError.toBody(), appError.status as ContentfulStatusCode, headers);
}

/**
 * A log-safe one-liner: the root cause's name and first message line. Drizzle's own wrapper puts the
 * SQL and its parameters (ciphertext, hashes) in `message`, so that layer is skipped on purpose.
 */
function describe(err: unknown): string {
  let root = err;
  while (root instanceof Error && root.cause instanceof Error) root = root.cause;
  if (!(root instanceof Error)) return "non-error value thrown";
  return `${root.name}: ${root.message.split("\n")[0]?.slice(0, 200)}`;
}

export const notAParticipant = () =>
  // The same answer whether the conversation exists or not: nobody learns which ones do.
  new AppError("forbidden", "not a participant of this conversation");

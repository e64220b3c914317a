import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_STATUS, type ErrorBody, type ErrorCode, type ErrorDetail } from "../../contract";

export type { ErrorCode };

export const errorStatus = ERROR_STATUS satisfies Record<ErrorCode, ContentfulStatusCode>;

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

/** An invited participant (a message request) reads but may not post, add, rotate or type. */
export const notAcceptedYet = () => new AppError("forbidden", "accept the conversation first");

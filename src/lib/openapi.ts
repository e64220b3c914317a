import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import type { AppEnv } from "../env";
import { AppError, type ErrorCode, errorStatus } from "./errors";

/**
 * A router whose routes are declared with `createRoute`: the same zod schemas validate requests
 * and describe them in `/openapi.json`. Validation failures become the contract's 422.
 */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new AppError("validation_failed", "request is not valid", {
          details: result.error.issues.map((issue) => ({
            path: issue.path.map(String).join("."),
            message: issue.message,
          })),
        });
      }
    },
  });
}

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(errorStatus) as [ErrorCode, ...ErrorCode[]]),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  })
  .openapi("Error");

const errorDescriptions: Record<number, string> = {
  400: "The body is not valid JSON",
  401: "Missing, malformed, expired or wrongly signed token (with `WWW-Authenticate: Bearer`)",
  403: "Not a participant of this conversation (whether or not it exists)",
  404: "Not found",
  409: "Conflict",
  413: "Body over 256 KiB",
  415: "Body not declared as application/json",
  422: "Validation failed; `details` lists each field",
  429: "Rate limited; `Retry-After` gives the seconds to wait",
  500: "Internal error (never with a stack trace or SQL)",
};

/** The error responses a route can give, all in the one error shape. */
export function errors(...statuses: number[]) {
  return Object.fromEntries(
    [...statuses, 500].map((status) => [
      status,
      {
        description: errorDescriptions[status] ?? "Error",
        content: { "application/json": { schema: ErrorBodySchema } },
      },
    ]),
  );
}

export const json = <T extends ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const jsonBody = <T extends ZodType>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export const bearer = [{ bearerAuth: [] }];

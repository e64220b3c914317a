import type { ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { AppError } from "./errors";

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Hono's validator with a zod schema, throwing the contract's errors: 415 for a body that is not
 * declared as JSON, 400 for JSON that does not parse (raised by Hono), 422 with `details` otherwise.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(
  target: Target,
  schema: Schema,
) {
  return validator(target, async (value, c): Promise<z.output<Schema>> => {
    if (target === "json") {
      const mediaType = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim();
      if (!JSON_MEDIA_TYPE.test(mediaType)) {
        throw new AppError("unsupported_media_type", "request body must be application/json");
      }
    }
    const result = await schema.safeParseAsync(value);
    if (!result.success) {
      throw new AppError("validation_failed", "request is not valid", {
        details: result.error.issues.map((issue) => ({
          path: issue.path.map(String).join("."),
          message: issue.message,
        })),
      });
    }
    return result.data;
  });
}

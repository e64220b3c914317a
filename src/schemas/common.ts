import { z } from "@hono/zod-openapi";
import { decodeBase64 } from "../lib/base64";
import { USERNAME_PATTERN } from "../lib/usernames";

/** Standard base64 with padding, decoded to bytes and length-checked (in decoded bytes). */
export function base64Bytes(minBytes: number, maxBytes: number) {
  const description = `standard base64 with padding, ${minBytes === maxBytes ? `exactly ${minBytes}` : `${minBytes} to ${maxBytes}`} bytes decoded`;
  return z
    .string()
    .openapi({ format: "byte", description })
    .transform((text, ctx) => {
      const bytes = decodeBase64(text);
      if (!bytes) {
        ctx.addIssue({ code: "custom", message: "must be standard base64 with padding" });
        return z.NEVER;
      }
      if (bytes.byteLength < minBytes || bytes.byteLength > maxBytes) {
        ctx.addIssue({
          code: "custom",
          message:
            minBytes === maxBytes
              ? `must decode to exactly ${minBytes} bytes`
              : `must decode to ${minBytes} to ${maxBytes} bytes`,
        });
        return z.NEVER;
      }
      return bytes;
    });
}

/** A positive integer id in a path or query string, within SQLite's and JavaScript's safe range. */
export const idString = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, "must be a positive integer")
  .transform(Number)
  .refine(Number.isSafeInteger, "must be a positive integer");

export const username = z.string().regex(USERNAME_PATTERN, "must be 3 to 32 characters of letters, digits, _ . -");

/** A raw X25519 or Ed25519 public key. */
export const rawKey = base64Bytes(32, 32);
/** An Ed25519 signature. */
export const signature = base64Bytes(64, 64);
export const wrappedKey = base64Bytes(16, 1024);
export const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const deviceIdParam = z.object({
  deviceId: idString.openapi({ param: { name: "deviceId", in: "path" }, type: "string", example: "5" }),
});

export const conversationIdParam = z.object({
  id: idString.openapi({ param: { name: "id", in: "path" }, type: "string", example: "7" }),
});

/** A base64 field as it is sent back. */
export const base64Out = z.string().openapi({ format: "byte", description: "standard base64 with padding" });
export const timestamp = z.string().openapi({ format: "date-time", example: "2026-11-23T20:19:42.055Z" });

/**
 * Text that is valid Unicode: a lone surrogate cannot be stored as UTF-8, so it would come back
 * changed (and an idempotency key would no longer match itself).
 */
export const wellFormed = z.string().refine((s) => s.isWellFormed(), "must be well-formed Unicode");

/** A page size in a query string: 1 to 100, 50 when absent (history and the conversation list). */
export const pageLimit = z
  .string()
  .regex(/^[0-9]{1,3}$/, "must be an integer from 1 to 100")
  .transform(Number)
  .refine((n) => n >= 1 && n <= 100, "must be an integer from 1 to 100")
  .default(50);

import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { decodeBase64Loose } from "../lib/base64url";
import { idString } from "./common";
import { requestOf, responseOf } from "./wire";

/** base64url or standard base64 (padded or not), decoded and length-checked. */
function looseBytes(length: number, check: (bytes: Uint8Array) => boolean = () => true) {
  return z
    .string()
    .openapi({ description: `base64url or standard base64, ${length} bytes decoded` })
    .transform((text, ctx) => {
      const bytes = decodeBase64Loose(text);
      if (!bytes || bytes.byteLength !== length || !check(bytes)) {
        ctx.addIssue({ code: "custom", message: `must be base64url or base64 of ${length} bytes` });
        return z.NEVER;
      }
      return bytes;
    });
}

export const pushSubscriptionBody = requestOf<Wire.PushSubscriptionRequest>()(
  z.object({
    endpoint: z
      .string()
      .max(2048)
      .refine((url) => URL.canParse(url), "must be an absolute URL"),
    keys: z.object({
      // An uncompressed P-256 point: 0x04, then x and y.
      p256dh: looseBytes(65, (bytes) => bytes[0] === 4),
      auth: looseBytes(16),
    }),
    expirationTime: z.number().nullish(),
  }),
);

export type PushSubscriptionBody = z.output<typeof pushSubscriptionBody>;

export const deviceIdParam = z.object({
  deviceId: idString.openapi({ param: { name: "deviceId", in: "path" }, type: "string", example: "5" }),
});

export const vapidPublicKeySchema = responseOf<Wire.VapidPublicKey>()(
  z.object({ publicKey: z.string() }).openapi("VapidPublicKey"),
);

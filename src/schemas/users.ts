import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { base64Bytes, base64Out, id, signature, timestamp, wrappedKey } from "./common";
import { requestOf, responseOf } from "./wire";

export const usernameParam = z.object({ username: z.string().openapi({ param: { name: "username", in: "path" } }) });

export const settingsSchema = responseOf<Wire.UserSettings>()(
  z.object({ readReceipts: z.boolean() }).openapi("UserSettings"),
);
export const settingsBody = requestOf<Wire.UpdateSettingsRequest>()(z.object({ readReceipts: z.boolean().optional() }));

export const userSchema = responseOf<Wire.User>()(
  z
    .object({
      userId: z.number().int(),
      username: z.string(),
      accountKey: base64Out,
      createdAt: timestamp,
      settings: settingsSchema,
    })
    .openapi("User"),
);

const deviceFields = {
  deviceId: z.number().int(),
  userId: z.number().int(),
  identityKey: base64Out,
  signingKey: base64Out,
  signature: base64Out.nullable(),
  createdAt: timestamp,
};
export const deviceSchema = responseOf<Wire.Device>()(z.object(deviceFields).openapi("Device"));
export const ownDeviceSchema = responseOf<Wire.OwnDevice>()(
  z
    .object({
      ...deviceFields,
      name: z.string(),
      status: z.enum(["active", "pending"]),
      lastSeenAt: timestamp.nullable(),
      current: z.boolean(),
    })
    .openapi("OwnDevice"),
);
export const conversationDeviceSchema = responseOf<Wire.ConversationDevice>()(
  z.object({ ...deviceFields, username: z.string() }).openapi("ConversationDevice"),
);

export const publicUserSchema = responseOf<Wire.PublicUser>()(
  z
    .object({ userId: z.number().int(), username: z.string(), accountKey: base64Out, devices: z.array(deviceSchema) })
    .openapi("PublicUser"),
);

export const MAX_PROVISIONING_BYTES = 4096;

export const approveBody = requestOf<Wire.ApproveDeviceRequest>()(
  z.object({
    signature,
    provisioning: base64Bytes(1, MAX_PROVISIONING_BYTES),
    keys: z.array(z.object({ conversationId: id, epoch: id, wrappedKey, signature })).max(1000),
  }),
);
export const provisioningSchema = responseOf<Wire.Provisioning>()(
  z.object({ provisioning: base64Out }).openapi("Provisioning"),
);

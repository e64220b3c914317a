import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { id, rawKey, signature, username, wellFormed } from "./common";
import { requestOf, responseOf } from "./wire";

export const password = z.string().min(8, "must be 8 to 256 characters").max(256, "must be 8 to 256 characters");
const deviceName = wellFormed.min(1, "must be 1 to 64 characters").max(64, "must be 1 to 64 characters");

const unsignedDevice = z.object({ name: deviceName, identityKey: rawKey, signingKey: rawKey });
export const newDevice = requestOf<Wire.NewDevice>()(unsignedDevice.extend({ signature }));

export const registerBody = requestOf<Wire.RegisterRequest>()(
  z.object({ username, password, accountKey: rawKey, device: newDevice }),
);
export const resetIdentityBody = requestOf<Wire.ResetIdentityRequest>()(
  z.object({ username: z.string().max(256), password: z.string().max(256), accountKey: rawKey, device: newDevice }),
);

// Login checks only lengths: a username that could never exist costs the same as a wrong password.
const credentials = { username: z.string().max(256), password: z.string().max(256) };
export const loginBody = requestOf<Wire.LoginRequest>()(
  z.union([
    z.object({ ...credentials, deviceId: id }).strict(),
    z.object({ ...credentials, device: unsignedDevice }).strict(),
  ]),
);
export const refreshBody = requestOf<Wire.RefreshRequest>()(z.object({ refreshToken: z.string().min(1).max(256) }));
export const passwordProofBody = requestOf<Wire.PasswordProof>()(
  z.object({ password: z.string().max(256).optional() }),
);
export const changePasswordBody = requestOf<Wire.ChangePasswordRequest>()(
  z.object({ currentPassword: z.string().max(256), newPassword: password }),
);

export const registeredSchema = responseOf<Wire.Registered>()(
  z.object({ userId: z.number().int(), username: z.string(), deviceId: z.number().int() }).openapi("Registered"),
);
export const sessionSchema = responseOf<Wire.Session>()(
  z
    .object({
      accessToken: z.string(),
      tokenType: z.literal("Bearer"),
      expiresIn: z.number().int(),
      refreshToken: z.string(),
      refreshExpiresIn: z.number().int(),
      sessionId: z.number().int(),
      deviceId: z.number().int(),
      deviceStatus: z.enum(["active", "pending"]),
    })
    .openapi("Session"),
);
export const sessionInfoSchema = responseOf<Wire.SessionInfo>()(
  z
    .object({
      sessionId: z.number().int(),
      deviceId: z.number().int(),
      createdAt: z.string(),
      lastUsedAt: z.string(),
      current: z.boolean(),
    })
    .openapi("SessionInfo"),
);
export const sessionIdParam = z.object({
  sessionId: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, "must be a positive integer")
    .transform(Number)
    .openapi({ param: { name: "sessionId", in: "path" }, type: "string", example: "3" }),
});
export const ticketSchema = responseOf<Wire.SocketTicket>()(
  z.object({ ticket: z.string(), expiresIn: z.number().int() }).openapi("SocketTicket"),
);

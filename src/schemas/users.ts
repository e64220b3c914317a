import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { base64Out, publicKey, timestamp } from "./common";
import { requestOf, responseOf } from "./wire";

export const publicKeyBody = requestOf<Wire.UpdatePublicKeyRequest>()(z.object({ publicKey }));
export const usernameParam = z.object({ username: z.string().openapi({ param: { name: "username", in: "path" } }) });

export const userSchema = responseOf<Wire.User>()(
  z
    .object({ userId: z.number().int(), username: z.string(), publicKey: base64Out, createdAt: timestamp })
    .openapi("User"),
);
export const publicUserSchema = responseOf<Wire.PublicUser>()(
  z.object({ userId: z.number().int(), username: z.string(), publicKey: base64Out }).openapi("PublicUser"),
);

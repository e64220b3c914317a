import { z } from "@hono/zod-openapi";
import { base64Out, publicKey, timestamp } from "./common";

export const publicKeyBody = z.object({ publicKey });
export const usernameParam = z.object({ username: z.string().openapi({ param: { name: "username", in: "path" } }) });

export const userSchema = z
  .object({ userId: z.number().int(), username: z.string(), publicKey: base64Out, createdAt: timestamp })
  .openapi("User");
export const publicUserSchema = z
  .object({ userId: z.number().int(), username: z.string(), publicKey: base64Out })
  .openapi("PublicUser");

import { z } from "@hono/zod-openapi";
import { publicKey, username } from "./common";

const password = z.string().min(8, "must be 8 to 256 characters").max(256, "must be 8 to 256 characters");

export const registerBody = z.object({ username, password, publicKey });
export const loginBody = z.object({ username: z.string().max(256), password: z.string().max(256) });

export const registeredSchema = z.object({ userId: z.number().int(), username: z.string() }).openapi("Registered");
export const tokenSchema = z
  .object({ accessToken: z.string(), tokenType: z.literal("Bearer"), expiresIn: z.number().int() })
  .openapi("AccessToken");

import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { publicKey, username } from "./common";
import { requestOf, responseOf } from "./wire";

const password = z.string().min(8, "must be 8 to 256 characters").max(256, "must be 8 to 256 characters");

export const registerBody = requestOf<Wire.RegisterRequest>()(z.object({ username, password, publicKey }));
export const loginBody = requestOf<Wire.LoginRequest>()(
  z.object({ username: z.string().max(256), password: z.string().max(256) }),
);

export const registeredSchema = responseOf<Wire.Registered>()(
  z.object({ userId: z.number().int(), username: z.string() }).openapi("Registered"),
);
export const tokenSchema = responseOf<Wire.AccessToken>()(
  z
    .object({ accessToken: z.string(), tokenType: z.literal("Bearer"), expiresIn: z.number().int() })
    .openapi("AccessToken"),
);

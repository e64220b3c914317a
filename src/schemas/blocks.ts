import { z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import { timestamp } from "./common";
import { responseOf } from "./wire";

export const blockedUserSchema = responseOf<Wire.BlockedUser>()(
  z.object({ userId: z.number().int(), username: z.string(), blockedAt: timestamp }).openapi("BlockedUser"),
);

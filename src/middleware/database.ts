import { createMiddleware } from "hono/factory";
import { databases } from "../db/shards";
import type { AppEnv } from "../env";

/** The environment's databases on `c.var.dbs`, and the directory on `c.var.directory`. */
export const database = createMiddleware<AppEnv>(async (c, next) => {
  const dbs = databases(c.env);
  c.set("dbs", dbs);
  c.set("directory", dbs.directory);
  await next();
});

import { createMiddleware } from "hono/factory";
import { BOOKMARK_HEADER } from "../../contract";
import { sessionDatabases } from "../db/bookmarks";
import type { AppEnv } from "../env";

/**
 * The request's databases on `c.var.dbs` (the directory also on `c.var.dbs.directory`), each through a
 * D1 session from the client's bookmark; the answer carries the newest bookmarks (src/db/bookmarks.ts).
 */
export const database = createMiddleware<AppEnv>(async (c, next) => {
  const { dbs, bookmarks } = sessionDatabases(c.env, c.req.header(BOOKMARK_HEADER));
  c.set("dbs", dbs);
  await next();
  if (c.res.status === 101) return;
  const token = bookmarks();
  if (token) c.res.headers.set(BOOKMARK_HEADER, token);
});

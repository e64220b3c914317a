import type { Database } from "../env";
import { decodeBase64Loose, encodeBase64Url } from "../lib/base64url";
import { AppError } from "../lib/errors";
import { createDb } from "./client";
import { type Databases, databases, type Shard } from "./shards";

/*
 * The D1 Sessions API, per request: each database a request touches is used through a session that
 * starts at the client's bookmark for it (or, without one, anywhere: "first-unconstrained"), so a
 * replica may serve its reads but never one older than what the client last saw or wrote. The
 * answer carries every database's newest bookmark in one opaque token (contract BOOKMARK_HEADER).
 * Where D1 has no replicas (and locally) the sessions go to the primary and the bookmarks are
 * still issued and honoured, so this path runs in every test.
 */

/** Bookmarks by database: "d" the directory, a shard by its number. */
type BookmarkMap = Record<string, string>;

const MAX_BOOKMARK_LENGTH = 256;
const MAX_TOKEN_LENGTH = 16_384;

const invalidBookmark = () =>
  new AppError("bad_request", "the Parley-Bookmark header is not one this API gave", {
    details: [{ path: "Parley-Bookmark", message: "must be a bookmark this API gave" }],
  });

/** The client's token as bookmarks by database; absent: none. */
export function parseBookmarks(token: string | undefined): BookmarkMap {
  if (token === undefined || token === "") return {};
  if (token.length > MAX_TOKEN_LENGTH) throw invalidBookmark();
  try {
    const bytes = decodeBase64Loose(token);
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes ?? new Uint8Array()));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalidBookmark();
    const entries = Object.entries(parsed);
    const valid = entries.every(
      ([key, value]) =>
        /^(d|0|[1-9][0-9]{0,3})$/.test(key) && typeof value === "string" && value.length <= MAX_BOOKMARK_LENGTH,
    );
    if (!valid) throw invalidBookmark();
    return Object.fromEntries(entries) as BookmarkMap;
  } catch {
    throw invalidBookmark();
  }
}

export const encodeBookmarks = (bookmarks: BookmarkMap): string =>
  encodeBase64Url(new TextEncoder().encode(JSON.stringify(bookmarks)));

/** The request's databases over sessions, and the token to answer with. */
export function sessionDatabases(
  env: Env,
  token: string | undefined,
): { dbs: Databases; bookmarks: () => string | null } {
  const given = parseBookmarks(token);
  const base = databases(env);
  const sessions = new Map<string, D1DatabaseSession>();
  const handles = new Map<string, Database>();
  const open = (key: string, d1: D1Database): Database => {
    const existing = handles.get(key);
    if (existing) return existing;
    const session = d1.withSession(given[key] ?? "first-unconstrained");
    sessions.set(key, session);
    // Drizzle needs only `prepare` and `batch`, which a session has.
    const handle = createDb(session as unknown as D1Database);
    handles.set(key, handle);
    return handle;
  };
  const shard = (index: number): Shard | undefined => {
    const d1 = base.bindingOf(index);
    return d1 ? { index, db: open(String(index), d1) } : undefined;
  };
  const dbs: Databases = {
    get directory() {
      return open("d", base.directoryBinding);
    },
    get shards() {
      return base.shards.map((s) => shard(s.index)!);
    },
    shardAt: shard,
    shardOf: (id) => {
      const found = base.shardOf(id);
      return found ? shard(found.index) : undefined;
    },
    bindingOf: base.bindingOf,
    directoryBinding: base.directoryBinding,
  };
  const bookmarks = () => {
    const latest: BookmarkMap = { ...given };
    for (const [key, session] of sessions) {
      const bookmark = session.getBookmark();
      if (bookmark) latest[key] = bookmark;
    }
    return Object.keys(latest).length > 0 ? encodeBookmarks(latest) : null;
  };
  return { dbs, bookmarks };
}

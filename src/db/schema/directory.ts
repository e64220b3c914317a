import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { bytes } from "./bytes";

/*
 * The directory database: everything that belongs to an account (users, devices, sessions, tokens,
 * tickets, presence, blocks, push subscriptions, consents) and `user_shards`, which says where each
 * user's conversations live. Conversation data lives in the shard databases (./shard.ts).
 */

export const users = sqliteTable(
  "users",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    username: text("username").notNull(),
    passwordHash: bytes("password_hash").notNull(),
    passwordSalt: bytes("password_salt").notNull(),
    passwordAlgorithm: text("password_algorithm").notNull(),
    passwordIterations: integer("password_iterations").notNull(),
    /** The account's Ed25519 public key, which signs its devices. */
    accountKey: bytes("account_key").notNull(),
    readReceipts: integer("read_receipts", { mode: "boolean" }).notNull().default(true),
    createdAt: text("created_at").notNull(),
  },
  (t) => [uniqueIndex("users_username_lower_unique").on(sql`lower(${t.username})`)],
);

export const devices = sqliteTable(
  "devices",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    userId: integer("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    identityKey: bytes("identity_key").notNull(),
    signingKey: bytes("signing_key").notNull(),
    /** The account key's signature; null while pending. */
    signature: bytes("signature"),
    status: text("status", { enum: ["active", "pending", "revoked"] }).notNull(),
    provisioning: bytes("provisioning"),
    createdAt: text("created_at").notNull(),
    lastSeenAt: text("last_seen_at"),
  },
  (t) => [index("devices_user_idx").on(t.userId, t.status)],
);

export const sessions = sqliteTable(
  "sessions",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    userId: integer("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    deviceId: integer("device_id")
      .notNull()
      .references(() => devices.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
    lastUsedAt: text("last_used_at").notNull(),
    /** Set once the session ends; every token of it is refused from then on. */
    endedAt: text("ended_at"),
  },
  (t) => [index("sessions_user_idx").on(t.userId), index("sessions_device_idx").on(t.deviceId)],
);

/** Every refresh token ever issued (as a SHA-256 hash): a used one presented again ends its session. */
export const refreshTokens = sqliteTable(
  "refresh_tokens",
  {
    hash: bytes("hash").primaryKey(),
    sessionId: integer("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    expiresAt: text("expires_at").notNull(),
    usedAt: text("used_at"),
  },
  (t) => [index("refresh_tokens_session_idx").on(t.sessionId)],
);

/** Single-use WebSocket tickets (as a SHA-256 hash), bound to a session. */
export const socketTickets = sqliteTable("socket_tickets", {
  hash: bytes("hash").primaryKey(),
  sessionId: integer("session_id")
    .notNull()
    .references(() => sessions.id, { onDelete: "cascade" }),
  /** The expiry of the access token that asked for it (seconds): the socket's own expiry. */
  tokenExp: integer("token_exp").notNull(),
  expiresAt: text("expires_at").notNull(),
});

/**
 * Whether a user has an inbox socket open, written by their inbox object (`version` orders its
 * writes). Messages are forwarded only to inboxes marked online: most members are offline, and
 * waking an object for nobody is the write path's biggest cost.
 */
export const inboxPresence = sqliteTable("inbox_presence", {
  // No foreign key: a row for a user that does not exist is harmless (it joins with no participant),
  // and an inbox must not fail its device's upgrade over it.
  userId: integer("user_id").primaryKey(),
  online: integer("online", { mode: "boolean" }).notNull(),
  version: integer("version").notNull(),
  // "online" holds until then (ms since the epoch) unless the inbox renews it: a deploy or a crash
  // ends sockets without a close, so nothing would ever write "offline".
  expiresAt: integer("expires_at").notNull().default(0),
});

/** Who blocked whom (account data): a blocked user cannot start a conversation with, or add, the blocker. */
export const blocks = sqliteTable(
  "blocks",
  {
    blockerId: integer("blocker_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    blockedId: integer("blocked_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.blockerId, t.blockedId] }), index("blocks_blocked_idx").on(t.blockedId)],
);

/** One Web Push subscription per device; `lastPushAt` coalesces pushes (at most one per 10 s). */
export const pushSubscriptions = sqliteTable("push_subscriptions", {
  deviceId: integer("device_id").primaryKey(),
  endpoint: text("endpoint").notNull(),
  p256dh: bytes("p256dh").notNull(),
  auth: bytes("auth").notNull(),
  createdAt: text("created_at").notNull(),
  lastPushAt: text("last_push_at"),
});

/**
 * Consent between two users (account data): `userId` joins conversations that `peerId` puts them in
 * directly as a member, without a message request. Recorded when `userId` starts contact with
 * `peerId` (creates a conversation with them or adds them) or accepts a conversation `peerId`
 * added them to.
 */
export const consents = sqliteTable(
  "consents",
  {
    userId: integer("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    peerId: integer("peer_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.peerId] })],
);

/**
 * The shards that hold (or once held) a conversation `userId` takes part in. Written before the
 * shard write that puts them there, never removed on leave: a superset, so a crash between the two
 * writes costs one empty read, never a missed conversation. The shard's participants are the truth.
 */
export const userShards = sqliteTable(
  "user_shards",
  {
    userId: integer("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    shard: integer("shard").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.shard] })],
);

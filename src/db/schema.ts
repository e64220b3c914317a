import { sql } from "drizzle-orm";
import { customType, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** A BLOB column read and written as `Uint8Array`, whatever shape the driver hands back. */
const bytes = customType<{ data: Uint8Array; driverData: ArrayBuffer | Uint8Array | number[] }>({
  dataType: () => "blob",
  toDriver: (value) => value,
  fromDriver: (value) => (value instanceof Uint8Array ? value : new Uint8Array(value as ArrayBuffer | number[])),
});

// ---- Account-scoped data: users, devices, sessions, refresh tokens, socket tickets ----

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

// ---- Conversation-scoped data: conversations, participants, epochs, epoch keys, messages ----
// No foreign key points at the account tables: the two groups are meant to live in separate databases.

export const conversations = sqliteTable("conversations", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  title: text("title"),
  createdAt: text("created_at").notNull(),
  lastMessageId: integer("last_message_id"),
  lastSeq: integer("last_seq").notNull().default(0),
  lastActivityAt: text("last_activity_at").notNull(),
  epoch: integer("epoch").notNull().default(1),
  rotationNeeded: integer("rotation_needed", { mode: "boolean" }).notNull().default(false),
  /** Disappearing messages (issue #13): new messages get `expires_at` = sent + this; null: never. */
  messageTtlSeconds: integer("message_ttl_seconds"),
});

export const participants = sqliteTable(
  "participants",
  {
    conversationId: integer("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    userId: integer("user_id").notNull(),
    /** Copied at join (usernames never change; the row goes when the account does). */
    username: text("username").notNull(),
    joinedAt: text("joined_at").notNull(),
    /** The conversation's last seq and current epoch when they joined: what they may see starts after / at them. */
    joinedSeq: integer("joined_seq").notNull().default(0),
    joinedEpoch: integer("joined_epoch").notNull().default(1),
    /** "admin" (the creator, and whoever inherits the role) or "member". */
    role: text("role", { enum: ["admin", "member"] })
      .notNull()
      .default("member"),
    /** "invited" until they accept (a message request): they read but cannot post or add. */
    status: text("status", { enum: ["member", "invited"] })
      .notNull()
      .default("member"),
    /** Who added them (the creator for a new conversation): the one a decline may block. */
    addedBy: integer("added_by"),
    /** Their read watermark (issue #13): only ever raised. 0 until they first mark something read. */
    lastReadSeq: integer("last_read_seq").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.userId] }), index("participants_user_idx").on(t.userId)],
);

export const epochs = sqliteTable(
  "epochs",
  {
    conversationId: integer("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    epoch: integer("epoch").notNull(),
    createdBy: integer("created_by").notNull(),
    createdByDevice: integer("created_by_device").notNull(),
    /** Random per commit: the batch's later statements run only for the commit that won the row. */
    commitId: text("commit_id").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.epoch] })],
);

export const epochKeys = sqliteTable(
  "epoch_keys",
  {
    conversationId: integer("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    epoch: integer("epoch").notNull(),
    deviceId: integer("device_id").notNull(),
    wrappedKey: bytes("wrapped_key").notNull(),
    signature: bytes("signature").notNull(),
    wrappedByUser: integer("wrapped_by_user").notNull(),
    wrappedByDevice: integer("wrapped_by_device").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.conversationId, t.epoch, t.deviceId] }),
    index("epoch_keys_device_idx").on(t.deviceId),
  ],
);

export const messages = sqliteTable(
  "messages",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    conversationId: integer("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    seq: integer("seq").notNull(),
    senderId: integer("sender_id").notNull(),
    /** Copied at send; null once the sender's account is deleted. */
    senderUsername: text("sender_username"),
    senderDeviceId: integer("sender_device_id").notNull(),
    keyEpoch: integer("key_epoch").notNull(),
    // The content columns are null in a tombstone.
    nonce: bytes("nonce"),
    ciphertext: bytes("ciphertext"),
    authTag: bytes("auth_tag"),
    associatedData: bytes("associated_data"),
    signature: bytes("signature"),
    clientMessageId: text("client_message_id"),
    deleted: integer("deleted", { mode: "boolean" }).notNull().default(false),
    createdAt: text("created_at").notNull(),
    // Issue #13, last so the insert-select in src/db/messages.ts only appends: a relation (kept on
    // tombstones) and, under disappearing messages, when it turns into a tombstone.
    relatesToId: integer("relates_to_id"),
    relatesToKind: text("relates_to_kind", { enum: ["reply", "edit", "reaction"] }),
    expiresAt: text("expires_at"),
  },
  (t) => [
    index("messages_conversation_id_idx").on(t.conversationId, t.id),
    // Only messages still waiting for the expiry sweep (small, whatever the history's size): per
    // conversation for the room's alarm, and by time alone for the cron's backstop pass.
    index("messages_expiry_idx")
      .on(t.conversationId, t.expiresAt)
      .where(sql`${t.expiresAt} is not null and ${t.deleted} = 0`),
    index("messages_expiry_time_idx").on(t.expiresAt).where(sql`${t.expiresAt} is not null and ${t.deleted} = 0`),
    index("messages_sender_idx").on(t.senderId),
    uniqueIndex("messages_conversation_seq_unique").on(t.conversationId, t.seq),
    uniqueIndex("messages_client_message_id_unique").on(t.conversationId, t.senderId, t.clientMessageId),
  ],
);

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

// Issue #14 (attachments and push). No foreign keys on purpose: an attachment row is the only handle
// on its R2 object, so rows must be deleted by src/db/attachments.ts (object first), never by a cascade.

/**
 * An encrypted attachment in R2 (key `attachments/<id>`). `size` stays null until the bytes are
 * stored, so a half-finished upload is neither readable nor claimable, and the cleanup job removes it.
 */
export const attachments = sqliteTable(
  "attachments",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    uploaderId: integer("uploader_id").notNull(),
    conversationId: integer("conversation_id").notNull(),
    size: integer("size"),
    createdAt: text("created_at").notNull(),
    usedByMessageId: integer("used_by_message_id"),
  },
  (t) => [index("attachments_used_by_idx").on(t.usedByMessageId, t.createdAt)],
);

/** Bytes each user sent per UTC day (`YYYY-MM-DD`), for the daily byte budget. */
export const dailyBytes = sqliteTable(
  "daily_bytes",
  {
    userId: integer("user_id").notNull(),
    day: text("day").notNull(),
    bytes: integer("bytes").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day] })],
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

import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { bytes } from "./bytes";

/*
 * A shard database: everything that belongs to the conversations placed in it (conversations,
 * participants with their read state, epochs and keys, messages, attachment records, the daily byte
 * counts of what was stored here) and a mirror of the few account facts their invariants read
 * (devices, sessions, the read-receipt setting), kept by src/db/mirror.ts.
 *
 * Ids of conversations, messages and attachments are global: `id % SHARD_ID_STRIDE` is the shard
 * (src/db/shards.ts), so an id alone says where its row lives.
 */

export const conversations = sqliteTable("conversations", {
  id: integer("id").primaryKey(),
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
    id: integer("id").primaryKey(),
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

// Issue #14 (attachments and push). No foreign keys on purpose: an attachment row is the only handle
// on its R2 object, so rows must be deleted by src/db/attachments.ts (object first), never by a cascade.

/**
 * An encrypted attachment in R2 (key `attachments/<id>`). `size` stays null until the bytes are
 * stored, so a half-finished upload is neither readable nor claimable, and the cleanup job removes it.
 */
export const attachments = sqliteTable(
  "attachments",
  {
    id: integer("id").primaryKey(),
    uploaderId: integer("uploader_id").notNull(),
    conversationId: integer("conversation_id").notNull(),
    size: integer("size"),
    createdAt: text("created_at").notNull(),
    usedByMessageId: integer("used_by_message_id"),
  },
  (t) => [index("attachments_used_by_idx").on(t.usedByMessageId, t.createdAt)],
);

/** Bytes each user stored in this shard per UTC day (`YYYY-MM-DD`), for the daily byte budget. */
export const dailyBytes = sqliteTable(
  "daily_bytes",
  {
    userId: integer("user_id").notNull(),
    day: text("day").notNull(),
    bytes: integer("bytes").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day] })],
);

// ---- The account mirror: copies of directory rows, only ever moved forward (src/db/mirror.ts) ----

/** Each device of a user who may take part here: what epoch coverage and the sender check read. */
export const devices = sqliteTable(
  "devices",
  {
    id: integer("id").primaryKey(),
    userId: integer("user_id").notNull(),
    // Null in a revocation's tombstone, written before any copy of the device reached this shard.
    identityKey: bytes("identity_key"),
    signingKey: bytes("signing_key"),
    signature: bytes("signature"),
    /** pending → active → revoked, never backwards (a late copy cannot undo a revocation). */
    status: text("status", { enum: ["active", "pending", "revoked"] }).notNull(),
    createdAt: text("created_at"),
  },
  (t) => [index("devices_user_idx").on(t.userId, t.status)],
);

/** Sessions (no token material): a message's sender must hold a live one. `endedAt` never clears. */
export const sessions = sqliteTable(
  "sessions",
  {
    id: integer("id").primaryKey(),
    userId: integer("user_id").notNull(),
    deviceId: integer("device_id").notNull(),
    endedAt: text("ended_at"),
  },
  (t) => [index("sessions_device_idx").on(t.deviceId)],
);

/** The read-receipt setting of users who take part here; `version` (ms) orders the copies. */
export const accountSettings = sqliteTable("account_settings", {
  userId: integer("user_id").primaryKey(),
  readReceipts: integer("read_receipts", { mode: "boolean" }).notNull(),
  version: integer("version").notNull(),
});

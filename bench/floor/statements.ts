// The statements Parley's insertMessage sends for a plain message (no attachments, no relation),
// as test/bench/floor/statements.test.ts records them from Drizzle. That test fails when they drift
// apart and prints the new INSERT_MESSAGE: replace the one below with it and run `npm run format`.

/** The per-request values the floor binds, by name; every other parameter is a constant. */
export interface SlotValues {
  conversationId: number;
  /** The conversation's shard (`conversationId % 4096`): part of the new message's id. */
  shard: number;
  userId: number;
  deviceId: number;
  sessionId: number;
  keyEpoch: number;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  authTag: Uint8Array;
  associatedData: Uint8Array | null;
  signature: Uint8Array;
  clientMessageId: string | null;
  /** `now` as an ISO string: the message's `created_at`. */
  createdAt: string;
  /** The UTC day of `now` (`YYYY-MM-DD`): the daily byte budget's row. */
  day: string;
  /** The ciphertext's length, charged against the budget. */
  bytes: number;
  budget: number;
  /** `now` in milliseconds: what an inbox's presence lease is compared with. */
  nowMs: number;
  /** The conversation's participants as one JSON parameter (the delivery's directory read). */
  participantIds: string;
}

export type Slot = keyof SlotValues;
export type Param = Slot | { literal: string | number | null };

export interface Statement {
  sql: string;
  params: Param[];
}

/** Where the floor reads its answers in the batch's results (kept by hand; the test checks them). */
export const RESULT = { inserted: 0, participants: 3 } as const;

export const INSERT_MESSAGE: Statement[] = [
  {
    sql: `insert into "messages" ("id", "conversation_id", "seq", "sender_id", "sender_username", "sender_device_id", "key_epoch", "nonce", "ciphertext", "auth_tag", "associated_data", "signature", "client_message_id", "deleted", "created_at", "relates_to_id", "relates_to_kind", "expires_at") select (select coalesce(max("messages"."id"), ?) from "messages") + ? as "id", "id", "last_seq" + 1 as "seq", ? as "sender_id", (select "username" from "participants" where "conversation_id" = ? and "user_id" = ?) as "sender_username", ? as "sender_device_id", ? as "key_epoch", ? as "nonce", ? as "ciphertext", ? as "auth_tag", ? as "associated_data", ? as "signature", ? as "client_message_id", 0 as "deleted", ? as "created_at", ? as "relates_to_id", ? as "relates_to_kind", case when "message_ttl_seconds" is null then null else strftime('%Y-%m-%dT%H:%M:%fZ', ?, '+' || "message_ttl_seconds" || ' seconds') end as "expires_at" from "conversations" where ("conversations"."id" = ? and "conversations"."epoch" = ? and "conversations"."rotation_needed" = ? and exists (select 1 from "participants" where "participants"."conversation_id" = ? and "participants"."user_id" = ? and "participants"."status" = 'member') and exists (select 1 from "sessions" join "devices" on "devices"."id" = "sessions"."device_id"\n    where "sessions"."id" = ? and "sessions"."user_id" = ? and "sessions"."device_id" = ?\n      and "sessions"."ended_at" is null and "devices"."status" = 'active') and 1 and coalesce((select "daily_bytes"."bytes" from "daily_bytes" where ("daily_bytes"."user_id" = ? and "daily_bytes"."day" = ?)), 0) + ? <= ?) on conflict do nothing returning "id", "conversation_id", "seq", "sender_id", "sender_username", "sender_device_id", "key_epoch", "nonce", "ciphertext", "auth_tag", "associated_data", "signature", "client_message_id", "deleted", "created_at", "relates_to_id", "relates_to_kind", "expires_at"`,
    params: [
      "shard",
      { literal: 4096 },
      "userId",
      "conversationId",
      "userId",
      "deviceId",
      "keyEpoch",
      "nonce",
      "ciphertext",
      "authTag",
      "associatedData",
      "signature",
      "clientMessageId",
      "createdAt",
      { literal: null },
      { literal: null },
      "createdAt",
      "conversationId",
      "keyEpoch",
      { literal: 0 },
      "conversationId",
      "userId",
      "sessionId",
      "userId",
      "deviceId",
      "userId",
      "day",
      "bytes",
      "budget",
    ],
  },
  {
    sql: `insert into "daily_bytes" ("user_id", "day", "bytes") select ? as "user_id", ? as "day", ? as "bytes" from (select 1) where (select "messages"."id" from "messages"\n    where "messages"."conversation_id" = ? and "messages"."sender_id" = ?\n      and "messages"."seq" = (select "conversations"."last_seq" + 1 from "conversations" where "conversations"."id" = ?)) is not null on conflict ("daily_bytes"."user_id", "daily_bytes"."day") do update set "bytes" = "daily_bytes"."bytes" + excluded.bytes`,
    params: ["userId", "day", "bytes", "conversationId", "userId", "conversationId"],
  },
  {
    sql: `update "conversations" set "last_message_id" = (select max("messages"."id") from "messages" where "messages"."conversation_id" = ?), "last_seq" = "conversations"."last_seq" + 1, "last_activity_at" = ? where ("conversations"."id" = ? and "conversations"."last_seq" < (select max("messages"."seq") from "messages" where "messages"."conversation_id" = ?))`,
    params: ["conversationId", "createdAt", "conversationId", "conversationId"],
  },
  {
    sql: `select "user_id" from "participants" where "participants"."conversation_id" = ?`,
    params: ["conversationId"],
  },
];

/** The directory read after the answer (src/db/delivery.ts): who is online, who can be pushed. */
export const DELIVERY: Statement = {
  sql: `select "user_id", null as "device_id" from "inbox_presence" where ("inbox_presence"."user_id" in (select value from json_each(?)) and "inbox_presence"."online" = ? and "inbox_presence"."expires_at" > ?) union all select "devices"."user_id", "devices"."id" from "devices" inner join "push_subscriptions" on "push_subscriptions"."device_id" = "devices"."id" where ("devices"."user_id" in (select value from json_each(?)) and "devices"."status" = ? and "devices"."id" <> ?)`,
  params: ["participantIds", { literal: 1 }, "nowMs", "participantIds", { literal: "active" }, "deviceId"],
};

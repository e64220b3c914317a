import { and, eq, getTableColumns, type SQL, sql } from "drizzle-orm";
import type { Database } from "../env";
import type { Identity } from "../lib/jwt";
import { attachmentsClaimable, claimAttachments, claimValues, justInsertedMessageId } from "./attachments";
import { isMember } from "./conversations";
import { senderMayPost } from "./coverage";
import { chargeDailyBytesIf, fitsDailyBudget, utcDay } from "./daily-bytes";
import type { ByteCharge, InsertOutcome, NewMessage, StoredMessage } from "./messages";
import { mapRow, PrebuiltShapes, slot } from "./prebuilt";
import { type Relation, relationValid } from "./relations";
import { conversations, messages, participants } from "./schema/shard";
import { nextShardId } from "./shards";

/** For callers that bypass the route (test fixtures): still counted, never refused. */
const UNLIMITED = (): ByteCharge => ({ budget: Number.MAX_SAFE_INTEGER, now: new Date() });

/** What makes two messages' statements differ: attachments (an extra condition and statement) and a relation. */
type Shape = `${"plain" | "attachments"}:${"none" | "relation"}`;

const n = slot<number>;
const conversationId = n("conversationId");
const senderId = n("senderId");
const createdAt = slot<string>("createdAt");
const claim = {
  idsJson: slot<string>("attachmentIdsJson"),
  count: n("attachmentCount"),
  conversationId,
  senderId,
};
const justInserted = justInsertedMessageId(conversationId, senderId);

function buildInsert(db: Database, shape: Shape) {
  const [attachmentsPart, relationPart] = shape.split(":");
  const relation: Relation | null =
    relationPart === "relation" ? { messageId: n("relatesToId"), kind: slot<Relation["kind"]>("relatesToKind") } : null;
  const sender = { userId: senderId, deviceId: n("senderDeviceId"), sessionId: n("sessionId") };
  const conditions: (SQL | undefined)[] = [
    eq(conversations.id, conversationId),
    eq(conversations.epoch, n("keyEpoch")),
    eq(conversations.rotationNeeded, false),
    isMember(conversationId, senderId),
    senderMayPost(sender),
    relationValid(conversationId, senderId, relation),
    attachmentsPart === "attachments" ? attachmentsClaimable(claim) : undefined,
    fitsDailyBudget(senderId, n("bytes"), n("budget"), slot<string>("day")),
  ];
  return db
    .insert(messages)
    .select(
      db
        // Insert-select wants the columns in table order, the id included.
        .select({
          id: sql<number>`${nextShardId(messages, messages.id, n("shard"))}`.as("id"),
          conversationId: conversations.id,
          seq: sql<number>`${conversations.lastSeq} + 1`.as("seq"),
          senderId: sql<number>`${senderId}`.as("sender_id"),
          senderUsername:
            sql<string>`(select ${participants.username} from ${participants} where ${participants.conversationId} = ${conversationId} and ${participants.userId} = ${senderId})`.as(
              "sender_username",
            ),
          senderDeviceId: sql<number>`${sender.deviceId}`.as("sender_device_id"),
          keyEpoch: sql<number>`${n("keyEpoch")}`.as("key_epoch"),
          nonce: sql<Uint8Array>`${slot("nonce")}`.as("nonce"),
          ciphertext: sql<Uint8Array>`${slot("ciphertext")}`.as("ciphertext"),
          authTag: sql<Uint8Array>`${slot("authTag")}`.as("auth_tag"),
          associatedData: sql<Uint8Array | null>`${slot("associatedData")}`.as("associated_data"),
          signature: sql<Uint8Array>`${slot("signature")}`.as("signature"),
          clientMessageId: sql<string | null>`${slot("clientMessageId")}`.as("client_message_id"),
          deleted: sql<boolean>`0`.as("deleted"),
          createdAt: sql<string>`${createdAt}`.as("created_at"),
          relatesToId: sql<number | null>`${relation ? relation.messageId : null}`.as("relates_to_id"),
          relatesToKind: sql<Relation["kind"] | null>`${relation ? relation.kind : null}`.as("relates_to_kind"),
          // Disappearing messages: the conversation's TTL at the moment of the commit.
          expiresAt: sql<
            string | null
          >`case when ${conversations.messageTtlSeconds} is null then null else strftime('%Y-%m-%dT%H:%M:%fZ', ${createdAt}, '+' || ${conversations.messageTtlSeconds} || ' seconds') end`.as(
            "expires_at",
          ),
        })
        .from(conversations)
        .where(and(...conditions)),
    )
    .onConflictDoNothing()
    .returning();
}

const insert = new PrebuiltShapes<Shape>(buildInsert);
const claimStatement = new PrebuiltShapes<"claim">((db) => claimAttachments(db, claim));
// Both need the new message as `seq = lastSeq + 1`: after the INSERT, before the UPDATE below.
const chargeStatement = new PrebuiltShapes<"charge">((db) =>
  chargeDailyBytesIf(db, senderId, n("bytes"), slot<string>("day"), sql`${justInserted} is not null`),
);
const advanceStatement = new PrebuiltShapes<"advance">((db) =>
  db
    .update(conversations)
    .set({
      lastSeq: sql`${conversations.lastSeq} + 1`,
      lastMessageId: sql`(select max(${messages.id}) from ${messages} where ${messages.conversationId} = ${conversationId})`,
      lastActivityAt: createdAt,
    })
    .where(
      and(
        eq(conversations.id, conversationId),
        sql`${conversations.lastSeq} < (select max(${messages.seq}) from ${messages} where ${messages.conversationId} = ${conversationId})`,
      ),
    ),
);
const participantsStatement = new PrebuiltShapes<"participants">((db) =>
  db.select({ userId: participants.userId }).from(participants).where(eq(participants.conversationId, conversationId)),
);

const messageColumns = getTableColumns(messages);

/**
 * Stores a message in one atomic D1 batch (one round trip) in its conversation's shard (`shard`).
 * The INSERT takes its `seq` from the conversation row and only runs if everything the contract
 * asks of a sender holds at that very moment: the session is alive and its device active (as the
 * shard's mirror knows them, src/db/mirror.ts, so a revoked token is refused without a round trip
 * of its own), the sender takes part, `keyEpoch` is the current epoch and it needs no rotation,
 * every attachment is still the sender's, of this conversation and unused, and the ciphertext still
 * fits the sender's daily byte budget. Then, only if a row was inserted, the attachments are linked
 * to it, the ciphertext's bytes are charged, and `lastSeq`/`lastMessageId` advance. D1 runs a batch
 * as one transaction and writes one at a time, so seqs are consecutive, two messages racing for one
 * attachment cannot both commit, and two racing for the budget's last bytes cannot both pass. A
 * repeated `clientMessageId` inserts nothing (ON CONFLICT DO NOTHING), which also covers two racing
 * retries. The batch also reads the participants, for the delivery after it.
 *
 * The statements are prebuilt (src/db/prebuilt.ts): a message binds its values to SQL built once.
 * Nothing inserted: the caller finds out why with `whyRefused` (the failure path only).
 */
export async function insertMessage(
  db: Database,
  shard: number,
  message: NewMessage,
  sender: Identity,
  charge: ByteCharge = UNLIMITED(),
): Promise<InsertOutcome> {
  const attachmentIds = message.attachmentIds ?? [];
  const withAttachments = attachmentIds.length > 0;
  const shape: Shape = `${withAttachments ? "attachments" : "plain"}:${message.relatesTo ? "relation" : "none"}`;
  const { idsJson, count } = claimValues({
    attachmentIds,
    conversationId: message.conversationId,
    senderId: sender.userId,
  });
  const values = {
    shard,
    conversationId: message.conversationId,
    senderId: sender.userId,
    senderDeviceId: sender.deviceId,
    sessionId: sender.sessionId,
    keyEpoch: message.keyEpoch,
    nonce: message.nonce,
    ciphertext: message.ciphertext,
    authTag: message.authTag,
    associatedData: message.associatedData,
    signature: message.signature,
    clientMessageId: message.clientMessageId,
    createdAt: charge.now.toISOString(),
    relatesToId: message.relatesTo?.messageId ?? null,
    relatesToKind: message.relatesTo?.kind ?? null,
    attachmentIdsJson: idsJson,
    attachmentCount: count,
    bytes: message.ciphertext.byteLength,
    budget: charge.budget,
    day: utcDay(charge.now),
  };
  const statements = [
    insert.bind(db, shape, values),
    ...(withAttachments ? [claimStatement.bind(db, "claim", values)] : []),
    chargeStatement.bind(db, "charge", values),
    advanceStatement.bind(db, "advance", values),
    participantsStatement.bind(db, "participants", values),
  ];
  const results = await db.$client.batch<Record<string, unknown>>(statements);
  const inserted = results[0]!.results[0];
  if (!inserted) return { kind: "refused" };
  return {
    kind: "created",
    message: {
      ...mapRow<StoredMessage>(messageColumns, inserted),
      attachments: [...new Set(attachmentIds)].sort((a, b) => a - b),
    },
    participantIds: results.at(-1)!.results.map((r) => r.user_id as number),
  };
}

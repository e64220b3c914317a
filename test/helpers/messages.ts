import { insertMessage } from "../../src/db/message-insert";
import { shardOfId } from "../../src/db/shards";
import { presentMessage } from "../../src/presenters";
import { randomBytes, type TestUser } from "./api";
import { shardDbOf } from "./databases";

/** Commits a message to its conversation's shard without publishing it: as if its broadcast call were late or lost. */
export async function commitSilently(sender: TestUser, conversationId: number) {
  const outcome = await insertMessage(
    shardDbOf(conversationId),
    shardOfId(conversationId),
    {
      conversationId,
      keyEpoch: 1,
      nonce: randomBytes(12),
      ciphertext: randomBytes(20),
      authTag: randomBytes(16),
      associatedData: null,
      signature: randomBytes(64),
      clientMessageId: null,
    },
    // The identity a token would carry (insertMessage needs no more than that).
    {
      userId: sender.userId,
      deviceId: sender.deviceId,
      sessionId: sender.sessionId,
      exp: Math.floor(Date.now() / 1000) + 900,
    },
  );
  if (outcome.kind !== "created") throw new Error("not created");
  return presentMessage(outcome.message);
}

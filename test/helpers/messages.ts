import { env } from "cloudflare:workers";
import { createDb } from "../../src/db/client";
import { insertMessage } from "../../src/db/messages";
import { presentMessage } from "../../src/presenters";
import { randomBytes, type TestUser } from "./api";

/** Commits a message to D1 without publishing it: as if its broadcast call were late or lost. */
export async function commitSilently(sender: TestUser, conversationId: number) {
  const outcome = await insertMessage(
    createDb(env.DB),
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
    sender,
  );
  if (outcome.kind !== "created") throw new Error("not created");
  return presentMessage(outcome.message);
}

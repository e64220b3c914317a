import { z } from "zod";
import { encryptedKey, username, wellFormed } from "./common";

export const participantBody = z.object({ username, encryptedKey });

export const createConversationBody = z.object({
  title: wellFormed.max(200).nullish(),
  participants: z
    .array(participantBody)
    .min(2, "must list 2 to 256 participants")
    .max(256, "must list 2 to 256 participants")
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((p, index) => {
        const key = p.username.toLowerCase();
        if (seen.has(key)) {
          ctx.addIssue({ code: "custom", path: [index, "username"], message: `duplicate participant: ${p.username}` });
        }
        seen.add(key);
      });
    }),
});

export const participantParam = z.object({ id: z.string(), username: z.string() });

export type CreateConversationBody = z.output<typeof createConversationBody>;

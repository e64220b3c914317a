import { Hono } from "hono";
import {
  addParticipant,
  createConversation,
  findConversationForUser,
  listConversationsForUser,
  removeParticipant,
} from "../db/conversations";
import { listMessages } from "../db/messages";
import { findUserByUsername, findUsersByUsernames, isUniqueViolation } from "../db/users";
import type { AppEnv } from "../env";
import { AppError, notAParticipant } from "../lib/errors";
import { presentConversation, presentMessage } from "../lib/presenters";
import { validate } from "../lib/validator";
import { requireAuth } from "../middleware/auth";
import { publishConversationCreated, publishMembership } from "../realtime/publish";
import { conversationIdParam } from "../schemas/common";
import { createConversationBody, participantBody } from "../schemas/conversations";
import { historyQuery } from "../schemas/messages";


const conversationId = validate("param", conversationIdParam);

export const conversationRoutes = new Hono<AppEnv>()
  .use(requireAuth)
  .post("/", validate("json", createConversationBody), async (c) => {
    const body = c.req.valid("json");
    const me = c.var.user;
    const found = await findUsersByUsernames(c.var.db, body.participants.map((p) => p.username));
    const idByName = new Map(found.map((u) => [u.username.toLowerCase(), u]));
    const unknown = body.participants.flatMap((p, index) =>
      idByName.has(p.username.toLowerCase())
        ? []
        : [{ path: `participants.${index}.username`, message: `unknown user: ${p.username}` }],
    );
    if (unknown.length > 0) {
      throw new AppError("validation_failed", `unknown username: ${unknown.map((u) => u.message.slice(14)).join(", ")}`, {
        details: unknown,
      });
    }
    const members = body.participants.map((p) => {
      const user = idByName.get(p.username.toLowerCase())!;
      return { userId: user.id, username: user.username, encryptedKey: p.encryptedKey };
    });
    if (!members.some((m) => m.userId === me.userId)) {
      throw new AppError("validation_failed", "participants must include the creator", {
        details: [{ path: "participants", message: "must include the creator" }],
      });
    }
    const conversation = await createConversation(c.var.db, {
      title: body.title ?? null,
      creatorId: me.userId,
      members,
    });
    publishConversationCreated(c, conversation, members);
    return c.json(presentConversation(conversation), 201);
  })
  .get("/", async (c) => {
    const list = await listConversationsForUser(c.var.db, c.var.user.userId);
    return c.json(list.map(presentConversation));
  })
  .get("/:id", conversationId, async (c) => {
    const conversation = await findConversationForUser(c.var.db, c.req.valid("param").id, c.var.user.userId);
    if (!conversation) throw notAParticipant();
    return c.json(presentConversation(conversation));
  })
  .get("/:id/messages", conversationId, validate("query", historyQuery), async (c) => {
    const { id } = c.req.valid("param");
    const conversation = await findConversationForUser(c.var.db, id, c.var.user.userId);
    if (!conversation) throw notAParticipant();
    const page = await listMessages(c.var.db, id, c.req.valid("query"));
    return c.json(page.map(presentMessage));
  })
  .post("/:id/participants", conversationId, validate("json", participantBody), async (c) => {
    const { id } = c.req.valid("param");
    const { username, encryptedKey } = c.req.valid("json");
    const me = c.var.user;
    const [conversation, user] = await Promise.all([
      findConversationForUser(c.var.db, id, me.userId),
      findUserByUsername(c.var.db, username),
    ]);
    if (!conversation) throw notAParticipant();
    if (!user) {
      throw new AppError("validation_failed", `unknown username: ${username}`, {
        details: [{ path: "username", message: `unknown user: ${username}` }],
      });
    }
    if (conversation.participants.some((p) => p.userId === user.id)) {
      throw new AppError("conflict", `${user.username} is already a participant`);
    }
    const member = { userId: user.id, username: user.username, encryptedKey };
    let added;
    try {
      added = await addParticipant(c.var.db, id, me.userId, member);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError("conflict", `${user.username} is already a participant`);
      throw err;
    }
    if (!added) throw notAParticipant();
    // The insert is the request's last statement: the answer is built from what was read before it.
    const updated = { ...conversation, participants: [...conversation.participants, added] };
    await publishMembership(c, { type: "participantAdded", conversationId: id, member, by: me.userId }, updated);
    return c.json(presentConversation(updated), 201);
  })
  .delete("/:id/participants/:username", conversationId, async (c) => {
    const { id } = c.req.valid("param");
    const me = c.var.user;
    const conversation = await findConversationForUser(c.var.db, id, me.userId);
    if (!conversation) throw notAParticipant();
    const target = c.req.param("username").toLowerCase();
    const member = conversation.participants.find((p) => p.username.toLowerCase() === target);
    if (!member || !(await removeParticipant(c.var.db, id, member.userId))) {
      throw new AppError("not_found", "no such participant in this conversation");
    }
    await publishMembership(c, { type: "participantRemoved", conversationId: id, member, by: me.userId }, conversation);
    return c.body(null, 204);
  });

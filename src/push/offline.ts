import { enqueuePushes } from "./queue";

export interface PushCandidate {
  deviceId: number;
  userId: number;
}

/**
 * After a message commits (inside `waitUntil`): queues a push for each candidate device (subscribed,
 * active, of a participant, not the sender's) that has no socket the message reaches. Those are the
 * conversation's room and the device's user inbox; each object knows its own sockets exactly, so we
 * ask them rather than keep a per-device presence in D1. Only users whose inbox is marked online (read
 * in the commit's batch) can have an inbox socket; the room is asked once. Nothing is asked when no
 * participant's device has a subscription. An object that fails to answer counts as "no socket": an
 * extra push beats a missed one. Never throws.
 */
export async function pushToOfflineDevices(
  env: Env,
  push: { conversationId: number; messageId: number; candidates: PushCandidate[]; onlineInboxes: number[] },
): Promise<number> {
  const { conversationId, messageId, candidates } = push;
  if (candidates.length === 0) return 0;
  const deviceIds = candidates.map((d) => d.deviceId);
  const byOnlineUser = new Map<number, number[]>();
  const online = new Set(push.onlineInboxes);
  for (const { deviceId, userId } of candidates) {
    if (online.has(userId)) byOnlineUser.set(userId, [...(byOnlineUser.get(userId) ?? []), deviceId]);
  }
  const answers = await Promise.allSettled([
    env.CONVERSATION_ROOM.getByName(String(conversationId)).devicesWithSockets(deviceIds),
    ...[...byOnlineUser].map(([userId, ids]) => env.USER_INBOX.getByName(String(userId)).devicesWithSockets(ids)),
  ]);
  const connected = new Set<number>();
  for (const answer of answers) {
    if (answer.status === "fulfilled") for (const id of answer.value) connected.add(id);
  }
  const failed = answers.filter((a) => a.status === "rejected").length;
  if (failed > 0) console.error(`push: ${failed} socket look-ups failed (conversation ${conversationId})`);
  const offline = deviceIds.filter((id) => !connected.has(id));
  return enqueuePushes(env, { conversationId, messageId, deviceIds: offline });
}

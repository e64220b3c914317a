import { app } from "./app";
import { handleScheduled } from "./jobs/scheduled";
import { handlePushBatch } from "./push/queue";

export { ConversationRoom } from "./realtime/conversation-room";
export { UserInbox } from "./realtime/user-inbox";

export default {
  fetch: app.fetch,
  scheduled: (controller, env) => handleScheduled(controller, env),
  queue: (batch, env) => handlePushBatch(batch, env),
} satisfies ExportedHandler<Env>;

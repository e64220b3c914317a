import { app } from "./app";

export { ConversationRoom } from "./realtime/conversation-room";
export { UserInbox } from "./realtime/user-inbox";

export default { fetch: app.fetch } satisfies ExportedHandler<Env>;

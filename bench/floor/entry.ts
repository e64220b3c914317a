// The Worker the benchmark serves: Parley itself, plus the two floors under /__floor/ (see
// bench/README.md). Bundled like Parley and in the same bundle, so both run on the same isolate,
// the same bindings and the same server; production builds src/index.ts and never contains this.
import parley from "../../src/index";
import { FloorSockets } from "./sockets";
import { floorSend } from "./write";

export { ConversationRoom, UserInbox } from "../../src/index";
export { FloorSockets };

export type FloorEnv = Env & { FLOOR_SOCKETS: DurableObjectNamespace<FloorSockets> };

const PREFIX = "/__floor/";

function floor(request: Request, env: FloorEnv, ctx: ExecutionContext, path: string) {
  if (request.method === "POST" && path === "messages") {
    return floorSend(request, env, ctx, (message, inboxes) =>
      env.CONVERSATION_ROOM.getByName(String(message.conversationId)).publish(message, inboxes),
    );
  }
  if (request.method === "POST" && path === "ws/messages") {
    return floorSend(request, env, ctx, (message) =>
      env.FLOOR_SOCKETS.getByName(String(message.conversationId)).publish(message),
    );
  }
  const conversationId = path.startsWith("ws?") && new URL(request.url).searchParams.get("conversationId");
  if (request.method === "GET" && conversationId) return env.FLOOR_SOCKETS.getByName(conversationId).fetch(request);
  return new Response("not found", { status: 404 });
}

export default {
  ...parley,
  fetch(request, env, ctx) {
    // A string search rather than a URL parse: every request of Parley's own goes through here too.
    const at = request.url.indexOf(PREFIX);
    return at === -1
      ? parley.fetch(request, env, ctx)
      : floor(request, env, ctx, request.url.slice(at + PREFIX.length));
  },
} satisfies ExportedHandler<FloorEnv>;

import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import { config } from "./config";
import { AppError, renderError } from "./lib/errors";
import { createRouter } from "./lib/openapi";
import { database } from "./middleware/database";
import { attachmentRoutes } from "./routes/attachments";
import { authRoutes } from "./routes/auth";
import { blockRoutes } from "./routes/blocks";
import { conversationStateRoutes } from "./routes/conversation-state";
import { conversationRoutes } from "./routes/conversations";
import { deviceRoutes } from "./routes/devices";
import { mountOpenApi } from "./routes/docs";
import { epochRoutes } from "./routes/epochs";
import { messageRoutes } from "./routes/messages";
import { pushRoutes } from "./routes/push";
import { sessionRoutes } from "./routes/sessions";
import { userRoutes } from "./routes/users";
import { wsRoutes } from "./routes/ws";

export const MAX_BODY_BYTES = 256 * 1024;

export const app = createRouter();

// First, so that it also wraps the error answers of every later middleware (onError runs inside).
app.use(async (c, next) => {
  await next();
  // A 101 carries the object's own (immutable) headers and no body to cache or sniff.
  if (c.res.status === 101) return;
  c.res.headers.set("Cache-Control", "no-store");
  c.res.headers.set("X-Content-Type-Options", "nosniff");
});
app.use(async (c, next) => {
  c.set("config", config(c.env));
  await next();
  // The contract's media type, charset included (Hono's c.json leaves it out).
  if (c.res.headers.get("Content-Type") === "application/json") {
    c.res.headers.set("Content-Type", "application/json; charset=utf-8");
  }
});
app.use(
  methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      renderError(
        c,
        new AppError("method_not_allowed", `method not allowed; use ${methods.join(", ")}`, {
          headers: { Allow: methods.join(", ") },
        }),
      ),
  }),
);
const jsonBodyLimit = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new AppError("payload_too_large", `request body is larger than ${MAX_BODY_BYTES} bytes`);
  },
});
// Attachment uploads stream up to MAX_ATTACHMENT_BYTES and enforce that cap themselves (issue #14).
app.use((c, next) => (c.req.method === "POST" && c.req.path === "/attachments" ? next() : jsonBodyLimit(c, next)));
// An empty body counts as {} whatever its Content-Type says (contract, settled details: Bodies);
// Hono's validator would try to parse "" as JSON and answer 400.
app.use(async (c, next) => {
  if (c.req.header("Content-Length") === "0" && /^application\/json\b/i.test(c.req.header("Content-Type") ?? "")) {
    // Hono keeps pending reads in bodyCache (its type names the resolved values).
    (c.req.bodyCache as Record<string, Promise<unknown>>).text = Promise.resolve("{}");
  }
  await next();
});
app.use(database);

app.get("/health", (c) => c.json({ status: "ok" }));
app.route("/auth", authRoutes);
app.route("/users/me/blocked", blockRoutes);
app.route("/auth", sessionRoutes);
app.route("/users", userRoutes);
app.route("/devices", deviceRoutes);
app.route("/conversations", conversationRoutes);
app.route("/conversations", epochRoutes);
app.route("/conversations", conversationStateRoutes);
app.route("/", messageRoutes);
app.route("/ws", wsRoutes);
app.route("/", attachmentRoutes);
app.route("/", pushRoutes);
mountOpenApi(app);

app.notFound((c) => renderError(c, new AppError("not_found", "no such route")));
app.onError((err, c) => renderError(c, err));

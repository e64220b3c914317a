import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type * as Wire from "../../contract";
import type { AppEnv } from "../env";
import { errors, json } from "../lib/openapi";
import { conversationSchema } from "../schemas/conversations";
import { messageSchema } from "../schemas/messages";
import { responseOf } from "../schemas/wire";

const membershipSchema = responseOf<Wire.MembershipChange>()(
  z
    .object({ conversationId: z.number().int(), userId: z.number().int(), username: z.string(), by: z.number().int() })
    .openapi("MembershipChange"),
);

const epochChangeSchema = responseOf<Wire.EpochChange>()(
  z
    .object({
      conversationId: z.number().int(),
      epoch: z.number().int(),
      by: z.object({ userId: z.number().int(), deviceId: z.number().int() }),
    })
    .openapi("EpochChange"),
);
const deviceChangeSchema = responseOf<Wire.DeviceChange>()(
  z.object({ userId: z.number().int(), username: z.string(), deviceId: z.number().int() }).openapi("DeviceChange"),
);
const identityChangeSchema = responseOf<Wire.IdentityChange>()(
  z.object({ userId: z.number().int(), username: z.string() }).openapi("IdentityChange"),
);
const inboxOnly = { description: "inbox socket only" };
const messageDeletedSchema = responseOf<Wire.MessageDeleted>()(
  z
    .object({ conversationId: z.number().int(), messageId: z.number().int(), seq: z.number().int() })
    .openapi("MessageDeleted"),
);
const settingsChangeSchema = responseOf<Wire.SettingsChange>()(
  z
    .object({
      conversationId: z.number().int(),
      messageTtlSeconds: z.number().int().nullable(),
      by: z.number().int(),
    })
    .openapi("SettingsChange"),
);
const readReceiptSchema = responseOf<Wire.ReadReceipt>()(
  z
    .object({ conversationId: z.number().int(), userId: z.number().int(), seq: z.number().int() })
    .openapi("ReadReceipt"),
);
const typingSchema = responseOf<Wire.Typing>()(
  z.object({ conversationId: z.number().int(), userId: z.number().int() }).openapi("Typing"),
);

/** The frames a socket receives, documented as schemas (OpenAPI has no WebSocket operations). */
export const frameSchema = responseOf<Wire.ServerFrame>()(
  z
    .discriminatedUnion("type", [
      z.object({ type: z.literal("newMessage"), data: messageSchema }),
      z.object({ type: z.literal("participantAdded"), data: membershipSchema }),
      z.object({ type: z.literal("participantRemoved"), data: membershipSchema }),
      z.object({ type: z.literal("epochChanged"), data: epochChangeSchema }),
      z.object({ type: z.literal("messageDeleted"), data: messageDeletedSchema }),
      z.object({ type: z.literal("settingsChanged"), data: settingsChangeSchema }),
      z
        .object({ type: z.literal("read"), data: readReceiptSchema })
        .openapi({ description: "only for users who share read receipts (and always to the reader's own devices)" }),
      z
        .object({ type: z.literal("typing"), data: typingSchema })
        .openapi({ description: "relayed, never stored: show it for 3 to 5 seconds" }),
      z.object({ type: z.literal("conversationCreated"), data: conversationSchema }).openapi(inboxOnly),
      z.object({ type: z.literal("deviceAdded"), data: deviceChangeSchema }).openapi(inboxOnly),
      z.object({ type: z.literal("deviceRemoved"), data: deviceChangeSchema }).openapi(inboxOnly),
      z.object({ type: z.literal("identityChanged"), data: identityChangeSchema }).openapi(inboxOnly),
      z
        .object({ type: z.literal("deviceApproved"), data: z.object({ deviceId: z.number().int() }) })
        .openapi(inboxOnly),
      z
        .object({ type: z.literal("devicePending"), data: z.object({ deviceId: z.number().int(), name: z.string() }) })
        .openapi(inboxOnly),
      z.object({
        type: z.literal("error"),
        error: z.object({ code: z.enum(["bad_request", "forbidden"]), message: z.string() }),
      }),
    ])
    .openapi("ServerFrame"),
);

const WS_DESCRIPTION = `WebSocket upgrade. With \`conversationId\`: that conversation's socket; without: the caller's inbox
(every conversation they take part in). Browsers cannot set headers on a WebSocket, hence the credential in the
query: \`ticket\` (from \`POST /ws/tickets\`: single use, 30 s) or \`token\` (the access token). Either is removed from
the URL before anything past admission sees it, and never logged. A pending device may open only its inbox.

Server → client: one JSON text frame per event (schema \`ServerFrame\`). Each socket receives a conversation's
\`newMessage\` frames in increasing \`seq\`, each once. Client → server: \`ping\` is answered \`pong\`;
\`{"type":"typing","conversationId":7}\` (the id may be left out on a conversation socket) relays \`typing\` to the other
participants' sockets, at most one per 2 s per socket, never stored (an invited participant gets an \`error\` frame
with code \`forbidden\`); anything else gets an \`error\` frame (more than 20 frames in 10 s closes the socket with 1008).

Refusals after the handshake (the socket is accepted, then closed at once): **1008** bad/missing/expired token or
ticket, ended session, not a participant, unknown conversation, \`device not linked yet\`. Other close codes: 1000
normal, 1008 \`token expired\` or \`too many frames\`, 1011 server error, 1013 too many sockets (retry later),
**4001** session ended or device revoked, 4003 removed from the conversation.

Reconnect: open the socket first, then \`GET /conversations/{id}/messages?after=<last messageId held>\`, dedupe by
\`messageId\`.`;

/** Documents the routes that are not declared with createRoute (`/ws`, `/health`) and serves the document. */
export function mountOpenApi(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
  });
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/ws",
    operationId: "openSocket",
    tags: ["realtime"],
    // The access token travels in the query (browsers cannot set headers on a WebSocket).
    security: [],
    summary: "Conversation or inbox WebSocket",
    description: WS_DESCRIPTION,
    request: {
      query: z.object({
        ticket: z.string().optional().openapi({ description: "a ticket from POST /ws/tickets (or use token)" }),
        token: z.string().optional().openapi({ description: "the access token (or use ticket)" }),
        conversationId: z.string().optional().openapi({ description: "omit for the inbox socket" }),
      }),
      headers: z.object({ upgrade: z.literal("websocket") }),
    },
    responses: {
      // OpenAPI has no WebSocket messages: the frames' JSON Schema rides in an extension.
      101: {
        description: "Switching protocols: frames as `x-websocket-frames` (the contract's `ServerFrame`)",
        "x-websocket-frames": z.toJSONSchema(frameSchema, { io: "output", target: "draft-2020-12" }),
      } as { description: string },
      403: errors(403)[403]!,
      426: { description: "No `Upgrade: websocket` header", content: errors()[500]!.content },
    },
  });
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/health",
    operationId: "health",

    tags: ["operations"],
    security: [],
    summary: "Liveness (does not touch the database)",
    responses: { 200: json(z.object({ status: z.literal("ok") }), "Healthy") },
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Parley",
      version: "1.0.0",
      // OpenAPI 3.1 license identifier (SPDX); the library's types know only 3.0's fields.
      license: { name: "Proprietary", identifier: "LicenseRef-Parley-Proprietary" } as { name: string },
      description:
        "End-to-end-encrypted messaging backend: stores and relays ciphertext only. Every error has the shape `Error`. " +
        "Every answer that read or wrote data carries a `Parley-Bookmark` header; send the last one back on the next " +
        "request to read your own writes across database replicas (optional; a token this API did not give is 400).",
    },
    servers: [{ url: "/", description: "The origin that serves this document" }],
    tags: [
      { name: "accounts", description: "Registration, login, the caller's account and other users' keys and devices" },
      { name: "sessions", description: "Logout, the caller's sessions, password change" },
      { name: "devices", description: "The caller's devices: approval, provisioning, revocation" },
      { name: "key epochs", description: "Per-device wrapped conversation keys and epoch commits" },
      { name: "conversations", description: "Conversations, their participants and wrapped keys" },
      { name: "messages", description: "Sending ciphertext and reading history" },
      { name: "realtime", description: "WebSockets for one conversation or for the caller's inbox" },
      {
        name: "attachments",
        description: "Encrypted attachments: opaque bytes in object storage, read by participants",
      },
      {
        name: "push",
        description: "Web Push: the server's VAPID key and devices' subscriptions (payloads carry ids only)",
      },
      { name: "operations", description: "Health and documentation" },
    ],
  });
}

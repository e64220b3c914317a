import { Validator } from "@cfworker/json-schema";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/app";
import {
  b64,
  call,
  createConversation,
  json,
  messageBody,
  randomBytes,
  registerUser,
  type TestUser,
} from "../helpers/api";
import { conversationSocket, inboxSocket } from "../helpers/sockets";

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, unknown> };
};
let doc: Doc;

/** Replaces `#/components/schemas/…` references with the schemas themselves. */
function inline(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(inline);
  if (!schema || typeof schema !== "object") return schema;
  const ref = (schema as { $ref?: string }).$ref;
  if (ref) return inline(doc.components.schemas[ref.replace("#/components/schemas/", "")]);
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, inline(v)]));
}

/** Asserts that a real response is one the document declares for that operation, body included. */
async function expectDocumented(method: string, template: string, res: Response) {
  const operation = doc.paths[template]?.[method.toLowerCase()];
  expect(operation, `${method} ${template} is documented`).toBeDefined();
  const declared = operation.responses[String(res.status)];
  expect(declared, `${method} ${template} documents status ${res.status}`).toBeDefined();
  const schema = declared.content?.["application/json"]?.schema;
  if (!schema) {
    expect(await res.text()).toBe("");
    return;
  }
  expect(res.headers.get("Content-Type")).toBe("application/json; charset=utf-8");
  const body = await res.json();
  const result = new Validator(inline(schema) as object, "2020-12", false).validate(body);
  expect(result.errors, `${method} ${template} ${res.status}: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
}

describe("GET /openapi.json", () => {
  beforeAll(async () => {
    const res = await call("GET", "/openapi.json");
    expect(res.status).toBe(200);
    doc = await json(res);
  });

  it("is OpenAPI 3.1 and documents every route the app serves, with bearer auth", () => {
    expect(doc.openapi).toBe("3.1.0");
    const served = app.routes
      .filter((r) => r.method !== "ALL" && !r.path.endsWith("*"))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}").replace(/(.)\/$/, "$1")}`);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    for (const route of served) {
      if (route === "get /openapi.json") continue;
      expect(documented).toContain(route);
    }
    expect(doc.paths["/messages"]!.post.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/ws"]!.get.description).toContain("4003");
  });

  describe("matches what the API really answers", () => {
    let alice: TestUser;
    let bob: TestUser;
    beforeAll(async () => {
      alice = await registerUser("oas");
      bob = await registerUser("oas");
    });

    it("for accounts", async () => {
      const username = `oas_${Date.now().toString(36)}`;
      const body = { username, password: "long enough", publicKey: b64(randomBytes(32)) };
      await expectDocumented("POST", "/auth/register", await call("POST", "/auth/register", { body }));
      await expectDocumented("POST", "/auth/register", await call("POST", "/auth/register", { body })); // 409
      await expectDocumented(
        "POST",
        "/auth/register",
        await call("POST", "/auth/register", { body: { ...body, username: "x" } }),
      ); // 422
      await expectDocumented(
        "POST",
        "/auth/register",
        await call("POST", "/auth/register", { body: "{", headers: { "Content-Type": "application/json" } }),
      );
      await expectDocumented(
        "POST",
        "/auth/register",
        await call("POST", "/auth/register", { body: "a=b", headers: { "Content-Type": "text/plain" } }),
      );
      await expectDocumented(
        "POST",
        "/auth/login",
        await call("POST", "/auth/login", { body: { username, password: "long enough" } }),
      );
      await expectDocumented(
        "POST",
        "/auth/login",
        await call("POST", "/auth/login", { body: { username, password: "wrong one" } }),
      );
      await expectDocumented("GET", "/users/me", await call("GET", "/users/me", { token: alice.token }));
      await expectDocumented("GET", "/users/me", await call("GET", "/users/me", { token: "nope" }));
      await expectDocumented(
        "PUT",
        "/users/me/public-key",
        await call("PUT", "/users/me/public-key", { token: alice.token, body: { publicKey: alice.publicKey } }),
      );
      await expectDocumented(
        "GET",
        "/users/{username}",
        await call("GET", `/users/${bob.username}`, { token: alice.token }),
      );
      await expectDocumented(
        "GET",
        "/users/{username}",
        await call("GET", "/users/nobody_at_all", { token: alice.token }),
      );
    });

    it("for conversations and messages", async () => {
      const carol = await registerUser("oas");
      const id = await createConversation(alice, bob);
      await expectDocumented("GET", "/conversations", await call("GET", "/conversations", { token: alice.token }));
      await expectDocumented(
        "GET",
        "/conversations/{id}",
        await call("GET", `/conversations/${id}`, { token: alice.token }),
      );
      await expectDocumented(
        "GET",
        "/conversations/{id}",
        await call("GET", `/conversations/${id}`, { token: carol.token }),
      ); // 403
      await expectDocumented(
        "GET",
        "/conversations/{id}",
        await call("GET", "/conversations/abc", { token: alice.token }),
      ); // 422
      const message = messageBody(id, { clientMessageId: "oas-1", associatedData: b64(randomBytes(8)) });
      await expectDocumented(
        "POST",
        "/messages",
        await call("POST", "/messages", { token: alice.token, body: message }),
      ); // 201
      await expectDocumented(
        "POST",
        "/messages",
        await call("POST", "/messages", { token: alice.token, body: message }),
      ); // 200
      await expectDocumented(
        "POST",
        "/messages",
        await call("POST", "/messages", { token: carol.token, body: message }),
      ); // 403
      await expectDocumented(
        "POST",
        "/messages",
        await call("POST", "/messages", { token: alice.token, body: { ...message, authTag: "AA==" } }),
      );
      await expectDocumented(
        "GET",
        "/conversations/{id}/messages",
        await call("GET", `/conversations/${id}/messages?limit=10`, { token: bob.token }),
      );
      await expectDocumented(
        "GET",
        "/conversations/{id}/messages",
        await call("GET", `/conversations/${id}/messages?before=1&after=1`, { token: bob.token }),
      );
      const participant = { username: carol.username, encryptedKey: b64(randomBytes(32)) };
      await expectDocumented(
        "POST",
        "/conversations/{id}/participants",
        await call("POST", `/conversations/${id}/participants`, { token: alice.token, body: participant }),
      );
      await expectDocumented(
        "POST",
        "/conversations/{id}/participants",
        await call("POST", `/conversations/${id}/participants`, { token: alice.token, body: participant }),
      ); // 409
      await expectDocumented(
        "DELETE",
        "/conversations/{id}/participants/{username}",
        await call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: alice.token }),
      );
      await expectDocumented(
        "DELETE",
        "/conversations/{id}/participants/{username}",
        await call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: alice.token }),
      ); // 404
      await expectDocumented(
        "POST",
        "/conversations",
        await call("POST", "/conversations", {
          token: alice.token,
          body: { participants: [{ username: alice.username, encryptedKey: b64(randomBytes(32)) }] },
        }),
      );
      await expectDocumented("GET", "/health", await call("GET", "/health"));
      await expectDocumented("GET", "/ws", await call("GET", `/ws?token=${alice.token}`)); // 426
    });
  });

  it("declares every frame a real socket receives (x-websocket-frames on /ws)", async () => {
    const alice = await registerUser("oasws");
    const bob = await registerUser("oasws");
    const carol = await registerUser("oasws");
    const inbox = await inboxSocket(bob.token);
    const id = await createConversation(alice, bob);
    const room = await conversationSocket(id, alice.token);
    await call("POST", "/messages", { token: alice.token, body: messageBody(id) });
    const added = { username: carol.username, encryptedKey: b64(randomBytes(32)) };
    await call("POST", `/conversations/${id}/participants`, { token: alice.token, body: added });
    await call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: alice.token });
    room.ws.send("not a command");
    const types = ["newMessage", "participantAdded", "participantRemoved", "error"];
    await room.waitFor((frames) => types.every((t) => frames.some((f) => f?.type === t)));
    await inbox.waitFor((frames) => frames.some((f) => f?.type === "conversationCreated"));
    const frameSchema = doc.paths["/ws"]!.get.responses["101"]["x-websocket-frames"] as object;
    const received = [...room.frames, ...inbox.frames];
    for (const frame of received) {
      const result = new Validator(frameSchema, "2020-12", false).validate(frame);
      expect(result.errors, JSON.stringify(frame).slice(0, 300)).toEqual([]);
    }
    expect(new Set(received.map((f) => f.type))).toEqual(new Set([...types, "conversationCreated"]));
    room.ws.close(1000);
    inbox.ws.close(1000);
  });
});

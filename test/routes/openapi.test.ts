import { Validator } from "@cfworker/json-schema";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/app";
import {
  addBody,
  approveBody,
  b64,
  call,
  conversationDeviceIds,
  createConversation,
  createInvitation,
  getConversation,
  json,
  loginPendingDevice,
  messageBody,
  randomBytes,
  registerUser,
  registrationBody,
  rotate,
  type TestUser,
  uniqueName,
  wrapFor,
} from "../helpers/api";
import { download, upload } from "../helpers/attachments";
import { conversationSocket, inboxSocket } from "../helpers/sockets";

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, unknown> };
};
let doc: Doc;
/** Every `method template` a real response was checked against. */
const covered = new Set<string>();

/** Replaces `#/components/schemas/…` references with the schemas themselves. */
function inline(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(inline);
  if (!schema || typeof schema !== "object") return schema;
  const ref = (schema as { $ref?: string }).$ref;
  if (ref) return inline(doc.components.schemas[ref.replace("#/components/schemas/", "")]);
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, inline(v)]));
}

/** Asserts that a real response is one the document declares for that operation, body included. */
async function expectDocumented(method: string, template: string, res: Response | Promise<Response>) {
  const response = await res;
  const operation = doc.paths[template]?.[method.toLowerCase()];
  expect(operation, `${method} ${template} is documented`).toBeDefined();
  covered.add(`${method.toLowerCase()} ${template}`);
  const declared = operation.responses[String(response.status)];
  expect(declared, `${method} ${template} documents status ${response.status}`).toBeDefined();
  if (declared.content?.["application/octet-stream"]) {
    expect(response.headers.get("Content-Type")).toBe("application/octet-stream");
    await response.arrayBuffer();
    return response;
  }
  const schema = declared.content?.["application/json"]?.schema;
  if (!schema) {
    expect(await response.text()).toBe("");
    return response;
  }
  expect(response.headers.get("Content-Type")).toBe("application/json; charset=utf-8");
  const body = await response.json();
  const result = new Validator(inline(schema) as object, "2020-12", false).validate(body);
  expect(result.errors, `${method} ${template} ${response.status}: ${JSON.stringify(body).slice(0, 300)}`).toEqual([]);
  return new Response(JSON.stringify(body), { status: response.status });
}

const frameValidator = () =>
  new Validator(doc.paths["/ws"]!.get.responses["101"]["x-websocket-frames"] as object, "2020-12", false);

describe("GET /openapi.json", () => {
  beforeAll(async () => {
    const res = await call("GET", "/openapi.json");
    expect(res.status).toBe(200);
    doc = await json(res);
  });

  it("is OpenAPI 3.1 and documents every route the app serves, with bearer auth and an operationId each", () => {
    expect(doc.openapi).toBe("3.1.0");
    const served = app.routes
      .filter((r) => r.method !== "ALL" && !r.path.endsWith("*"))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}").replace(/(.)\/$/, "$1")}`);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`));
    for (const route of served) {
      if (route === "get /openapi.json") continue;
      expect(documented).toContain(route);
    }
    const operationIds = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op: any) => op.operationId));
    expect(operationIds.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    expect(new Set(operationIds).size).toBe(operationIds.length);
    expect(doc.paths["/messages"]!.post.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/auth/refresh"]!.post.security).toEqual([]);
    expect(doc.paths["/ws"]!.get.description).toContain("4003");
    expect(doc.paths["/ws"]!.get.description).toContain("4001");
    // v1 routes that v2 replaced are gone from the document too.
    expect(doc.paths["/users/me/public-key"]).toBeUndefined();
  });

  describe("matches what the API really answers", () => {
    let alice: TestUser;
    let bob: TestUser;
    let carol: TestUser;
    beforeAll(async () => {
      [alice, bob, carol] = await Promise.all([registerUser("oas"), registerUser("oas"), registerUser("oas")]);
    });

    it("for accounts and sessions", async () => {
      const { body } = await registrationBody(uniqueName("oas"), "long enough");
      const registered = await expectDocumented("POST", "/auth/register", call("POST", "/auth/register", { body }));
      const { deviceId } = await json(registered);
      await expectDocumented("POST", "/auth/register", call("POST", "/auth/register", { body })); // 409
      await expectDocumented(
        "POST",
        "/auth/register",
        call("POST", "/auth/register", { body: { ...body, username: "x" } }),
      ); // 422
      const forged = {
        ...body,
        username: uniqueName("oas"),
        device: { ...body.device, signature: b64(randomBytes(64)) },
      };
      await expectDocumented("POST", "/auth/register", call("POST", "/auth/register", { body: forged })); // 422 signature
      await expectDocumented(
        "POST",
        "/auth/register",
        call("POST", "/auth/register", { body: "{", headers: { "Content-Type": "application/json" } }),
      ); // 400
      await expectDocumented(
        "POST",
        "/auth/register",
        call("POST", "/auth/register", { body: "a=b", headers: { "Content-Type": "text/plain" } }),
      ); // 415
      const credentials = { username: body.username, password: "long enough" };
      const loggedIn = await expectDocumented(
        "POST",
        "/auth/login",
        call("POST", "/auth/login", { body: { ...credentials, deviceId } }),
      );
      const session = await json(loggedIn);
      await expectDocumented(
        "POST",
        "/auth/login",
        call("POST", "/auth/login", { body: { ...credentials, password: "wrong one", deviceId } }),
      ); // 401
      await expectDocumented("POST", "/auth/login", call("POST", "/auth/login", { body: credentials })); // 422
      const refreshed = await expectDocumented(
        "POST",
        "/auth/refresh",
        call("POST", "/auth/refresh", { body: { refreshToken: session.refreshToken } }),
      );
      const next = await json(refreshed);
      await expectDocumented(
        "POST",
        "/auth/refresh",
        call("POST", "/auth/refresh", { body: { refreshToken: "x".repeat(43) } }),
      ); // 401
      await expectDocumented("GET", "/auth/sessions", call("GET", "/auth/sessions", { token: next.accessToken }));
      await expectDocumented(
        "DELETE",
        "/auth/sessions/{sessionId}",
        call("DELETE", `/auth/sessions/${alice.sessionId}`, {
          token: next.accessToken,
          body: { password: "long enough" },
        }),
      ); // 404: another user's
      await expectDocumented("POST", "/ws/tickets", call("POST", "/ws/tickets", { token: next.accessToken }));
      await expectDocumented("POST", "/ws/tickets", call("POST", "/ws/tickets", { token: "nope" })); // 401
      await expectDocumented(
        "POST",
        "/auth/password",
        call("POST", "/auth/password", {
          token: next.accessToken,
          body: { currentPassword: "wrong one", newPassword: "longer still" },
        }),
      ); // 403
      await expectDocumented(
        "POST",
        "/auth/password",
        call("POST", "/auth/password", {
          token: next.accessToken,
          body: { currentPassword: "long enough", newPassword: "longer still" },
        }),
      );
      await expectDocumented("POST", "/auth/logout", call("POST", "/auth/logout", { token: next.accessToken }));
      await expectDocumented("POST", "/auth/logout", call("POST", "/auth/logout", { token: next.accessToken })); // 401

      await expectDocumented("GET", "/users/me", call("GET", "/users/me", { token: alice.token }));
      await expectDocumented("GET", "/users/me", call("GET", "/users/me", { token: "nope" }));
      await expectDocumented("GET", "/users/me/settings", call("GET", "/users/me/settings", { token: alice.token }));
      await expectDocumented(
        "PUT",
        "/users/me/settings",
        call("PUT", "/users/me/settings", { token: alice.token, body: { readReceipts: true } }),
      );
      await expectDocumented(
        "PUT",
        "/users/me/settings",
        call("PUT", "/users/me/settings", { token: alice.token, body: { readReceipts: "yes" } }),
      ); // 422
      await expectDocumented("GET", "/users/{username}", call("GET", `/users/${bob.username}`, { token: alice.token }));
      await expectDocumented("GET", "/users/{username}", call("GET", "/users/nobody_at_all", { token: alice.token }));
      await expectDocumented("GET", "/users/me/blocked", call("GET", "/users/me/blocked", { token: alice.token }));
      await expectDocumented(
        "PUT",
        "/users/me/blocked/{username}",
        call("PUT", `/users/me/blocked/${carol.username}`, { token: bob.token }),
      );
      await expectDocumented(
        "PUT",
        "/users/me/blocked/{username}",
        call("PUT", `/users/me/blocked/${bob.username}`, { token: bob.token }),
      ); // 422
      await expectDocumented(
        "PUT",
        "/users/me/blocked/{username}",
        call("PUT", "/users/me/blocked/nobody_at_all", { token: bob.token }),
      ); // 404
      await expectDocumented(
        "DELETE",
        "/users/me/blocked/{username}",
        call("DELETE", `/users/me/blocked/${carol.username}`, { token: bob.token }),
      );

      // Someone who lost every device resets their identity; then deletes the account.
      const dave = await registerUser("oas");
      const reset = await registrationBody(dave.username, dave.password);
      await expectDocumented(
        "POST",
        "/auth/reset-identity",
        call("POST", "/auth/reset-identity", { body: { ...reset.body, password: "wrong password" } }),
      ); // 401
      const afterReset = await json(
        await expectDocumented(
          "POST",
          "/auth/reset-identity",
          call("POST", "/auth/reset-identity", { body: reset.body }),
        ),
      );
      await expectDocumented(
        "DELETE",
        "/users/me",
        call("DELETE", "/users/me", { token: afterReset.accessToken, body: { password: "wrong password" } }),
      ); // 403
      await expectDocumented(
        "DELETE",
        "/users/me",
        call("DELETE", "/users/me", { token: afterReset.accessToken, body: { password: dave.password } }),
      );
    });

    it("for devices", async () => {
      const user = await registerUser("oasdev");
      await createConversation(user, bob);
      const phone = await loginPendingDevice(user, "phone");
      await expectDocumented("GET", "/devices", call("GET", "/devices", { token: phone.token }));
      await expectDocumented("GET", "/conversations", call("GET", "/conversations", { token: phone.token })); // 403 pending
      const body = await approveBody(user, phone);
      await expectDocumented(
        "POST",
        "/devices/{deviceId}/approve",
        call("POST", `/devices/${phone.deviceId}/approve`, { token: user.token, body: { ...body, keys: [] } }),
      ); // 422 missing conversations
      await expectDocumented(
        "POST",
        "/devices/{deviceId}/approve",
        call("POST", `/devices/${bob.deviceId}/approve`, { token: user.token, body }),
      ); // 404 another user's
      await expectDocumented(
        "GET",
        "/devices/{deviceId}/provisioning",
        call("GET", `/devices/${phone.deviceId}/provisioning`, { token: user.token }),
      ); // 404 (not its own, never approved)
      await expectDocumented(
        "POST",
        "/devices/{deviceId}/approve",
        call("POST", `/devices/${phone.deviceId}/approve`, { token: user.token, body }),
      );
      await expectDocumented(
        "POST",
        "/devices/{deviceId}/approve",
        call("POST", `/devices/${phone.deviceId}/approve`, { token: user.token, body }),
      ); // 409 no longer pending
      await expectDocumented(
        "GET",
        "/devices/{deviceId}/provisioning",
        call("GET", `/devices/${phone.deviceId}/provisioning`, { token: phone.token }),
      );
      await expectDocumented(
        "DELETE",
        "/devices/{deviceId}",
        call("DELETE", `/devices/${phone.deviceId}`, { token: user.token, body: { password: "wrong password" } }),
      ); // 403
      await expectDocumented(
        "DELETE",
        "/devices/{deviceId}",
        call("DELETE", `/devices/${phone.deviceId}`, { token: user.token, body: { password: user.password } }),
      );
    });

    it("for conversations, key epochs, messages and attachments", async () => {
      const keys = await Promise.all([alice.deviceId, bob.deviceId].map((d) => wrapFor(alice, d)));
      const created = await expectDocumented(
        "POST",
        "/conversations",
        call("POST", "/conversations", {
          token: alice.token,
          body: { participants: [alice.username, bob.username], keys },
        }),
      );
      const id = (await json(created)).conversationId;
      await expectDocumented(
        "POST",
        "/conversations",
        call("POST", "/conversations", { token: alice.token, body: { participants: [alice.username], keys } }),
      ); // 422
      await expectDocumented("GET", "/conversations", call("GET", "/conversations", { token: alice.token }));
      await expectDocumented("GET", "/conversations/{id}", call("GET", `/conversations/${id}`, { token: alice.token }));
      await expectDocumented("GET", "/conversations/{id}", call("GET", `/conversations/${id}`, { token: carol.token })); // 403
      await expectDocumented("GET", "/conversations/{id}", call("GET", "/conversations/abc", { token: alice.token })); // 422
      await expectDocumented(
        "GET",
        "/conversations/{id}/devices",
        call("GET", `/conversations/${id}/devices`, { token: bob.token }),
      );
      await expectDocumented(
        "GET",
        "/conversations/{id}/devices",
        call("GET", `/conversations/${id}/devices`, { token: carol.token }),
      ); // 403
      await expectDocumented(
        "GET",
        "/conversations/{id}/keys",
        call("GET", `/conversations/${id}/keys`, { token: bob.token }),
      );

      const devices = await conversationDeviceIds(alice, id);
      const next = { epoch: 2, keys: await Promise.all(devices.map((d) => wrapFor(alice, d))) };
      await expectDocumented(
        "POST",
        "/conversations/{id}/epochs",
        call("POST", `/conversations/${id}/epochs`, {
          token: alice.token,
          body: { ...next, keys: next.keys.slice(1) },
        }),
      ); // 422 coverage
      await expectDocumented(
        "POST",
        "/conversations/{id}/epochs",
        call("POST", `/conversations/${id}/epochs`, { token: alice.token, body: next }),
      );
      await expectDocumented(
        "POST",
        "/conversations/{id}/epochs",
        call("POST", `/conversations/${id}/epochs`, { token: bob.token, body: next }),
      ); // 409

      const message = messageBody(id, { keyEpoch: 2, clientMessageId: "oas-1", associatedData: b64(randomBytes(8)) });
      await expectDocumented("POST", "/messages", call("POST", "/messages", { token: alice.token, body: message })); // 201
      await expectDocumented("POST", "/messages", call("POST", "/messages", { token: alice.token, body: message })); // 200
      await expectDocumented("POST", "/messages", call("POST", "/messages", { token: carol.token, body: message })); // 403
      await expectDocumented(
        "POST",
        "/messages",
        call("POST", "/messages", { token: alice.token, body: messageBody(id) }),
      ); // 409 epoch
      await expectDocumented(
        "POST",
        "/messages",
        call("POST", "/messages", { token: alice.token, body: { ...message, authTag: "AA==" } }),
      ); // 422
      await expectDocumented(
        "GET",
        "/conversations/{id}/messages",
        call("GET", `/conversations/${id}/messages?limit=10`, { token: bob.token }),
      );
      await expectDocumented(
        "GET",
        "/conversations/{id}/messages",
        call("GET", `/conversations/${id}/messages?before=1&after=1`, { token: bob.token }),
      ); // 422

      const add = await addBody(alice, id, carol);
      await expectDocumented(
        "POST",
        "/conversations/{id}/participants",
        call("POST", `/conversations/${id}/participants`, { token: alice.token, body: add }),
      );
      await expectDocumented(
        "POST",
        "/conversations/{id}/participants",
        call("POST", `/conversations/${id}/participants`, { token: alice.token, body: add }),
      ); // 409 already in
      await expectDocumented(
        "POST",
        "/conversations/{id}/participants",
        call("POST", `/conversations/${id}/participants`, {
          token: alice.token,
          body: { ...add, username: "nobody_at_all" },
        }),
      ); // 422
      await expectDocumented(
        "DELETE",
        "/conversations/{id}/participants/{username}",
        call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: alice.token }),
      );
      await expectDocumented(
        "DELETE",
        "/conversations/{id}/participants/{username}",
        call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: alice.token }),
      ); // 404
      expect((await getConversation(alice, id)).rotationNeeded).toBe(true);
      await expectDocumented(
        "POST",
        "/messages",
        call("POST", "/messages", { token: alice.token, body: messageBody(id, { keyEpoch: 3 }) }),
      ); // 409 rotation
      await rotate(alice, id);

      // Read state, settings and delete for everyone.
      const posted = await json(
        await call("POST", "/messages", { token: alice.token, body: messageBody(id, { keyEpoch: 4 }) }),
      );
      await expectDocumented(
        "POST",
        "/conversations/{id}/read",
        call("POST", `/conversations/${id}/read`, { token: bob.token, body: { seq: posted.seq } }),
      );
      await expectDocumented(
        "POST",
        "/conversations/{id}/read",
        call("POST", `/conversations/${id}/read`, { token: bob.token, body: { seq: posted.seq + 5 } }),
      ); // 422
      await expectDocumented(
        "PUT",
        "/conversations/{id}/settings",
        call("PUT", `/conversations/${id}/settings`, { token: alice.token, body: { messageTtlSeconds: 3600 } }),
      );
      await expectDocumented(
        "PUT",
        "/conversations/{id}/settings",
        call("PUT", `/conversations/${id}/settings`, { token: alice.token, body: { messageTtlSeconds: 5 } }),
      ); // 422
      await expectDocumented(
        "DELETE",
        "/messages/{messageId}",
        call("DELETE", `/messages/${posted.messageId}`, { token: bob.token }),
      ); // 403: not the sender
      await expectDocumented(
        "DELETE",
        "/messages/{messageId}",
        call("DELETE", `/messages/${posted.messageId}`, { token: alice.token }),
      );

      const uploaded = await expectDocumented("POST", "/attachments", upload(alice.token, id, randomBytes(100)));
      const { attachmentId } = await json(uploaded);
      await expectDocumented("POST", "/attachments", upload(carol.token, id, randomBytes(10))); // 403
      await expectDocumented("POST", "/attachments", upload(alice.token, undefined, randomBytes(10))); // 422
      await expectDocumented("GET", "/attachments/{attachmentId}", download(alice.token, attachmentId));
      await expectDocumented("GET", "/attachments/{attachmentId}", download(bob.token, attachmentId)); // 403: unused yet

      await expectDocumented(
        "GET",
        "/push/vapid-public-key",
        call("GET", "/push/vapid-public-key", { token: alice.token }),
      );
      const subscription = {
        endpoint: "https://push.example.test/sub/1",
        keys: { p256dh: b64(new Uint8Array([4, ...randomBytes(64)])), auth: b64(randomBytes(16)) },
      };
      await expectDocumented(
        "PUT",
        "/devices/{deviceId}/push",
        call("PUT", `/devices/${alice.deviceId}/push`, { token: alice.token, body: subscription }),
      );
      await expectDocumented(
        "PUT",
        "/devices/{deviceId}/push",
        call("PUT", `/devices/${alice.deviceId}/push`, { token: alice.token, body: { endpoint: "nope" } }),
      ); // 422
      await expectDocumented(
        "DELETE",
        "/devices/{deviceId}/push",
        call("DELETE", `/devices/${alice.deviceId}/push`, { token: alice.token }),
      );
      await expectDocumented(
        "DELETE",
        "/devices/{deviceId}/push",
        call("DELETE", "/devices/987654321/push", { token: alice.token }),
      ); // 404

      // Message requests: dave is added by someone he never accepted.
      const dave = await registerUser("oas");
      const request = await createInvitation(alice, dave);
      await expectDocumented(
        "POST",
        "/conversations/{id}/accept",
        call("POST", `/conversations/${request}/accept`, { token: carol.token }),
      ); // 403
      await expectDocumented(
        "POST",
        "/conversations/{id}/decline",
        call("POST", `/conversations/${request}/decline`, { token: alice.token }),
      ); // 409: alice is a member
      await expectDocumented(
        "POST",
        "/conversations/{id}/accept",
        call("POST", `/conversations/${request}/accept`, { token: dave.token }),
      );
      const another = await createInvitation(bob, dave);
      await expectDocumented(
        "POST",
        "/conversations/{id}/decline",
        call("POST", `/conversations/${another}/decline`, { token: dave.token, body: { block: true } }),
      );
      await expectDocumented("GET", "/health", call("GET", "/health"));
      await expectDocumented("GET", "/ws", call("GET", `/ws?token=${alice.token}`)); // 426
    });

    it("reaches every documented operation", () => {
      const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.keys(ops).map((m) => `${m} ${path}`),
      );
      const missing = documented.filter((op) => !covered.has(op) && op !== "get /docs");
      expect(missing).toEqual([]);
    });
  });

  it("declares every frame a real socket receives (x-websocket-frames on /ws)", async () => {
    const [alice, bob, carol] = await Promise.all([
      registerUser("oasws"),
      registerUser("oasws"),
      registerUser("oasws"),
    ]);
    const [aliceInbox, bobInbox] = await Promise.all([inboxSocket(alice.token), inboxSocket(bob.token)]);
    const id = await createConversation(alice, bob);
    const room = await conversationSocket(id, alice.token);
    await call("POST", "/messages", { token: alice.token, body: messageBody(id) });
    expect(
      (
        await call("POST", `/conversations/${id}/participants`, {
          token: alice.token,
          body: await addBody(alice, id, carol),
        })
      ).status,
    ).toBe(201);
    await call("DELETE", `/conversations/${id}/participants/${carol.username}`, { token: alice.token });
    await rotate(alice, id);
    // Bob's new device: devicePending on his inbox, deviceApproved on the phone's, deviceAdded to Alice (shares a conversation).
    const phone = await loginPendingDevice(bob, "phone");
    await bobInbox.waitFor((frames) => frames.some((f) => f?.type === "devicePending"));
    const phoneInbox = await inboxSocket(phone.token);
    expect(
      (
        await call("POST", `/devices/${phone.deviceId}/approve`, {
          token: bob.token,
          body: await approveBody(bob, phone),
        })
      ).status,
    ).toBe(200);
    await phoneInbox.waitFor((frames) => frames.some((f) => f?.type === "deviceApproved"));
    await call("DELETE", `/devices/${phone.deviceId}`, { token: bob.token, body: { password: bob.password } });
    // Bob loses every device and resets: identityChanged to Alice.
    const reset = await registrationBody(bob.username, bob.password);
    expect((await call("POST", "/auth/reset-identity", { body: reset.body })).status).toBe(200);
    room.ws.send("not a command");

    const roomTypes = ["newMessage", "participantAdded", "participantRemoved", "epochChanged", "error"];
    const inboxTypes = ["conversationCreated", "deviceAdded", "deviceRemoved", "identityChanged"];
    await room.waitFor((frames) => roomTypes.every((t) => frames.some((f) => f?.type === t)));
    await aliceInbox.waitFor((frames) => inboxTypes.every((t) => frames.some((f) => f?.type === t)));
    const validator = frameValidator();
    const received = [...room.frames, ...aliceInbox.frames, ...bobInbox.frames, ...phoneInbox.frames];
    for (const frame of received) {
      const result = validator.validate(frame);
      expect(result.errors, JSON.stringify(frame).slice(0, 300)).toEqual([]);
    }
    const types = new Set(received.map((f) => f.type));
    for (const t of [...roomTypes, ...inboxTypes, "devicePending", "deviceApproved"]) expect(types, t).toContain(t);
    for (const socket of [room, aliceInbox, bobInbox, phoneInbox]) socket.ws.close(1000);
  });
});

// A client generated from /openapi.json by a standard generator (openapi-typescript types, used
// with openapi-fetch), as a team writing a Kotlin, Swift or Go client would do, driving a real
// session against wrangler dev. `npm run check` generates .openapi/schema.d.ts before it
// typechecks this file, so a document that no longer describes these calls fails the typecheck;
// the answers are then checked at run time.
import { randomBytes } from "node:crypto";
import createClient from "openapi-fetch";
import { describe, expect, it } from "vitest";
import type { paths } from "../../.openapi/schema.d.ts";
import { newIdentity } from "../../tools/wire/index.ts";
import { baseUrl, uniqueName } from "./helpers.ts";

const b64 = (length: number) => randomBytes(length).toString("base64");

describe("a client generated from the OpenAPI document", () => {
  it("registers with a signed device, logs in, creates a conversation with keys, sends and reads a message", async () => {
    const api = createClient<paths>({ baseUrl: baseUrl() });
    const names = [uniqueName("gen"), uniqueName("gen")];
    const password = "generated client";
    const users = [];
    for (const username of names) {
      const { accountKey, device } = newIdentity("generated");
      const { data, error } = await api.POST("/auth/register", { body: { username, password, accountKey, device } });
      expect(error).toBeUndefined();
      users.push(data!);
    }
    const login = await api.POST("/auth/login", {
      body: { username: names[0]!, password, deviceId: users[0]!.deviceId },
    });
    expect(login.data).toMatchObject({ tokenType: "Bearer", deviceStatus: "active", deviceId: users[0]!.deviceId });
    const headers = { Authorization: `Bearer ${login.data!.accessToken}` };

    const me = await api.GET("/users/me", { headers });
    expect(me.data).toMatchObject({ userId: users[0]!.userId, username: names[0] });

    // Random bytes stand in for the wraps: the server checks their sizes and that they cover every device.
    const created = await api.POST("/conversations", {
      headers,
      body: {
        title: "generated",
        participants: names,
        keys: users.map((u) => ({ deviceId: u.deviceId, wrappedKey: b64(93), signature: b64(64) })),
      },
    });
    expect(created.response.status).toBe(201);
    expect(created.data).toMatchObject({ epoch: 1, rotationNeeded: false });
    const conversationId = created.data!.conversationId;

    const sent = await api.POST("/messages", {
      headers,
      body: {
        conversationId,
        keyEpoch: 1,
        nonce: b64(12),
        ciphertext: b64(40),
        authTag: b64(16),
        signature: b64(64),
        clientMessageId: "gen-1",
      },
    });
    expect(sent.response.status).toBe(201);

    const history = await api.GET("/conversations/{id}/messages", {
      headers,
      params: { path: { id: String(conversationId) }, query: { limit: "10" } },
    });
    expect(history.data?.map((m) => [m.messageId, m.senderDeviceId, m.keyEpoch])).toEqual([
      [sent.data!.messageId, users[0]!.deviceId, 1],
    ]);

    const refused = await api.GET("/conversations/{id}", { params: { path: { id: String(conversationId) } } });
    expect(refused.response.status).toBe(401);
    expect(refused.error?.error.code).toBe("unauthorized");
  });
});

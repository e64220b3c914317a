import { describe, expect, it } from "vitest";
import { addBody, call, createConversation, getConversation, json, registerUser, wrapFor } from "../helpers/api";

// U+212A KELVIN SIGN: JavaScript's toLowerCase() folds it to "k"; SQLite's lower() leaves it alone.
const KELVIN = "\u212A";
const withKelvin = (username: string) => KELVIN + username.slice(1);

describe("usernames match case-insensitively in ASCII only", () => {
  it("login, lookup, blocking, adding and removing never take a Kelvin sign for k", async () => {
    const kate = await registerUser("kate");
    const alice = await registerUser("kal");
    const carol = await registerUser("kal");
    const id = await createConversation(alice, kate);
    const lookalike = withKelvin(kate.username);

    for (const body of [
      { username: lookalike, password: kate.password, deviceId: kate.deviceId },
      {
        username: lookalike,
        password: kate.password,
        device: { name: "x", identityKey: kate.device.identityKey, signingKey: kate.device.signingKey },
      },
    ]) {
      expect((await call("POST", "/auth/login", { body })).status).toBe(401);
    }
    expect((await call("GET", `/users/${encodeURIComponent(lookalike)}`, { token: alice.token })).status).toBe(404);
    expect(
      (await call("PUT", `/users/me/blocked/${encodeURIComponent(lookalike)}`, { token: alice.token })).status,
    ).toBe(404);

    const removed = await call("DELETE", `/conversations/${id}/participants/${encodeURIComponent(lookalike)}`, {
      token: alice.token,
    });
    expect(removed.status).toBe(404);
    expect((await getConversation(alice, id)).participants.map((p: any) => p.userId)).toContain(kate.userId);

    // Adding: a body that would be right for kate (her device's key included), under the lookalike name.
    const other = await createConversation(alice, carol);
    const body = { ...(await addBody(alice, other, kate)), username: lookalike };
    const added = await call("POST", `/conversations/${other}/participants`, { token: alice.token, body });
    expect(added.status).toBe(422);
    expect((await getConversation(alice, other)).participants).toHaveLength(2);

    const keys = await Promise.all([alice.deviceId, kate.deviceId].map((d) => wrapFor(alice, d)));
    const created = await call("POST", "/conversations", {
      token: alice.token,
      body: { participants: [alice.username, lookalike], keys },
    });
    expect(created.status).toBe(422);
  });

  it("ASCII case differences still match", async () => {
    const kate = await registerUser("kate");
    const viewer = await registerUser("kal");
    const login = await call("POST", "/auth/login", {
      body: { username: kate.username.toUpperCase(), password: kate.password, deviceId: kate.deviceId },
    });
    expect(login.status).toBe(200);
    const seen = await call("GET", `/users/${kate.username.toUpperCase()}`, { token: viewer.token });
    expect((await json(seen)).userId).toBe(kate.userId);
  });
});

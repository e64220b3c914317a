import { describe, expect, it } from "vitest";
import { b64, call, createConversation, getConversation, randomBytes, registerUser } from "../helpers/api";

// U+212A KELVIN SIGN: JavaScript's toLowerCase() folds it to "k"; SQLite's lower() leaves it alone.
const KELVIN = "\u212A";
const withKelvin = (username: string) => KELVIN + username.slice(1);

describe("usernames match case-insensitively in ASCII only", () => {
  it("login, lookup, adding and removing never take a Kelvin sign for k", async () => {
    const kate = await registerUser("kate");
    const alice = await registerUser("kal");
    const carol = await registerUser("kal");
    const id = await createConversation(alice, kate);
    const lookalike = withKelvin(kate.username);

    const login = await call("POST", "/auth/login", { body: { username: lookalike, password: kate.password } });
    expect(login.status).toBe(401);
    expect((await call("GET", `/users/${encodeURIComponent(lookalike)}`, { token: alice.token })).status).toBe(404);

    const removed = await call("DELETE", `/conversations/${id}/participants/${encodeURIComponent(lookalike)}`, {
      token: alice.token,
    });
    expect(removed.status).toBe(404);
    expect((await getConversation(alice, id)).participants.map((p: any) => p.userId)).toContain(kate.userId);

    const other = await createConversation(alice, carol);
    const added = await call("POST", `/conversations/${other}/participants`, {
      token: alice.token,
      body: { username: lookalike, encryptedKey: b64(randomBytes(48)) },
    });
    expect(added.status).toBe(422);
    const created = await call("POST", "/conversations", {
      token: alice.token,
      body: {
        participants: [alice.username, lookalike].map((username) => ({ username, encryptedKey: b64(randomBytes(48)) })),
      },
    });
    expect(created.status).toBe(422);
  });

  it("ASCII case differences still match", async () => {
    const kate = await registerUser("kate");
    const login = await call("POST", "/auth/login", {
      body: { username: kate.username.toUpperCase(), password: kate.password },
    });
    expect(login.status).toBe(200);
  });
});

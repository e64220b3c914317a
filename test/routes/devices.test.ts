import { describe, expect, it } from "vitest";
import {
  approve,
  approveBody,
  b64,
  call,
  createConversation,
  errorOf,
  getConversation,
  json,
  loginPendingDevice,
  randomBytes,
  registerUser,
  registrationBody,
  sendMessage,
  uniqueName,
} from "../helpers/api";
import { countInShards } from "../helpers/databases";
import { conversationSocket, inboxSocket } from "../helpers/sockets";

describe("devices", () => {
  it("register refuses a device signature that does not verify (422)", async () => {
    const { body } = await registrationBody(uniqueName("dev"), "correct horse battery");
    const res = await call("POST", "/auth/register", {
      body: { ...body, device: { ...body.device, signature: b64(randomBytes(64)) } },
    });
    expect(res.status).toBe(422);
    expect((await errorOf(res)).details?.[0]?.path).toBe("device.signature");
  });

  it("a pending device may use only its few routes; everything else is 403 device not linked yet", async () => {
    const [alice, bob] = await Promise.all([registerUser("dev"), registerUser("dev")]);
    const id = await createConversation(alice, bob);
    const phone = await loginPendingDevice(alice);
    for (const [method, path] of [
      ["GET", "/users/me"],
      ["GET", "/devices"],
    ] as const) {
      expect((await call(method, path, { token: phone.token })).status, path).toBe(200);
    }
    expect((await call("POST", "/ws/tickets", { token: phone.token })).status).toBe(201);
    for (const [method, path] of [
      ["GET", "/conversations"],
      ["GET", `/conversations/${id}`],
      ["GET", `/users/${bob.username}`],
      ["GET", "/auth/sessions"],
    ] as const) {
      const res = await call(method, path, { token: phone.token });
      expect(res.status, path).toBe(403);
      expect((await errorOf(res)).message).toBe("device not linked yet");
    }
    const send = await sendMessage(phone, id);
    expect(send.status).toBe(403);
    expect(send.body.error.message).toBe("device not linked yet");
    const socket = await conversationSocket(id, phone.token);
    expect(await socket.closed).toEqual({ code: 1008, reason: "device not linked yet" });
    const devices = await json(await call("GET", "/devices", { token: phone.token }));
    expect(
      devices.map((d: { status: string; current: boolean; signature: string | null }) => [
        d.status,
        d.current,
        d.signature === null,
      ]),
    ).toEqual([
      ["active", false, false],
      ["pending", true, true],
    ]);
  });

  it("approval: 404 foreign, 422 bad signature or missing/extra conversations, 409 stale epoch, then 200 and the device works", async () => {
    const [alice, bob, carol] = await Promise.all([registerUser("dev"), registerUser("dev"), registerUser("dev")]);
    const [first, second] = [await createConversation(alice, bob), await createConversation(alice, carol)];
    const inbox = await inboxSocket(alice.token);
    const phone = await loginPendingDevice(alice, "phone");
    await inbox.waitFor((f) =>
      f.some((x) => x.type === "devicePending" && x.data.deviceId === phone.deviceId && x.data.name === "phone"),
    );
    const phoneInbox = await inboxSocket(phone.token);
    const path = `/devices/${phone.deviceId}/approve`;
    const body = await approveBody(alice, phone);
    expect((await call("POST", path, { token: bob.token, body })).status).toBe(404);
    expect((await call("POST", "/devices/999999/approve", { token: alice.token, body })).status).toBe(404);
    const badSig = await call("POST", path, { token: alice.token, body: { ...body, signature: b64(randomBytes(64)) } });
    expect(badSig.status).toBe(422);
    const missing = await call("POST", path, {
      token: alice.token,
      body: { ...body, keys: body.keys.filter((k) => k.conversationId !== second) },
    });
    expect(missing.status).toBe(422);
    expect((await errorOf(missing)).details).toEqual([
      { path: "keys", message: `missing conversation ids: ${second}` },
    ]);
    const extra = await call("POST", path, {
      token: alice.token,
      body: { ...body, keys: [...body.keys, { ...body.keys[0]!, conversationId: 999999 }] },
    });
    expect((await errorOf(extra)).details).toEqual([{ path: "keys", message: "unexpected conversation ids: 999999" }]);
    const stale = await call("POST", path, {
      token: alice.token,
      body: { ...body, keys: body.keys.map((k) => (k.conversationId === first ? { ...k, epoch: 7 } : k)) },
    });
    expect(stale.status).toBe(409);
    expect((await errorOf(stale)).details?.[0]?.message).toBe("current is 1");
    const tooBig = await call("POST", path, {
      token: alice.token,
      body: { ...body, provisioning: b64(randomBytes(4097)) },
    });
    expect(tooBig.status).toBe(422);
    expect((await call("GET", `/devices/${phone.deviceId}/provisioning`, { token: alice.token })).status).toBe(404);

    const ok = await call("POST", path, { token: alice.token, body });
    expect(ok.status).toBe(200);
    expect((await json(ok)).signature).toBe(body.signature);
    await phoneInbox.waitFor((f) => f.some((x) => x.type === "deviceApproved" && x.data.deviceId === phone.deviceId));
    const again = await call("POST", path, { token: alice.token, body: { nonsense: true } });
    expect(again.status).toBe(409);
    // The existing session works at once, with its key, and nobody needs a rotation.
    const view = await getConversation(phone, first);
    expect(view.key?.epoch).toBe(1);
    expect(view.rotationNeeded).toBe(false);
    expect((await sendMessage(phone, first)).status).toBe(201);
    const provisioning = await call("GET", `/devices/${phone.deviceId}/provisioning`, { token: phone.token });
    expect(await json(provisioning)).toEqual({ provisioning: body.provisioning });
    expect((await call("GET", `/devices/${phone.deviceId}/provisioning`, { token: alice.token })).status).toBe(404);
    const seen = await json(await call("GET", `/users/${alice.username}`, { token: bob.token }));
    expect(seen.devices.map((d: { deviceId: number }) => d.deviceId)).toEqual([alice.deviceId, phone.deviceId]);
  });

  it("revocation: password needed for another device (403 wrong), sockets close 4001, rotation needed, 401 after", async () => {
    const [alice, bob] = await Promise.all([registerUser("dev"), registerUser("dev")]);
    const id = await createConversation(alice, bob);
    const phone = await loginPendingDevice(alice);
    expect((await approve(alice, phone)).status).toBe(200);
    const bobInbox = await inboxSocket(bob.token);
    const [room, inbox] = await Promise.all([conversationSocket(id, phone.token), inboxSocket(phone.token)]);
    const path = `/devices/${phone.deviceId}`;
    expect((await call("DELETE", path, { token: alice.token })).status).toBe(403);
    expect((await call("DELETE", path, { token: alice.token, body: { password: "wrong password" } })).status).toBe(403);
    expect((await call("DELETE", path, { token: bob.token, body: { password: bob.password } })).status).toBe(404);
    const started = Date.now();
    expect((await call("DELETE", path, { token: alice.token, body: { password: alice.password } })).status).toBe(204);
    for (const closed of await Promise.all([room.closed, inbox.closed])) expect(closed.code).toBe(4001);
    expect(Date.now() - started).toBeLessThan(1000);
    await bobInbox.waitFor((f) => f.some((x) => x.type === "deviceRemoved" && x.data.deviceId === phone.deviceId));
    expect((await call("GET", "/users/me", { token: phone.token })).status).toBe(401);
    const login = await call("POST", "/auth/login", {
      body: { username: alice.username, password: alice.password, deviceId: phone.deviceId },
    });
    expect(login.status).toBe(401);
    expect((await getConversation(alice, id)).rotationNeeded).toBe(true);
    const send = await sendMessage(alice, id);
    expect(send.status).toBe(409);
    expect(send.body.error.details).toEqual([{ path: "epoch", message: "rotation required" }]);
    const keys = await countInShards("select count(*) as n from epoch_keys where device_id = ?", phone.deviceId);
    expect(keys).toBe(0);
    // The caller's own current device needs no password.
    expect((await call("DELETE", `/devices/${alice.deviceId}`, { token: alice.token })).status).toBe(204);
    expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(401);
  });

  it("identity reset: new account key and device, old devices revoked, identityChanged to peers", async () => {
    const [alice, bob] = await Promise.all([registerUser("dev"), registerUser("dev")]);
    const id = await createConversation(alice, bob);
    const [bobInbox, aliceRoom] = await Promise.all([inboxSocket(bob.token), conversationSocket(id, alice.token)]);
    const { body } = await registrationBody(alice.username, alice.password);
    expect((await call("POST", "/auth/reset-identity", { body: { ...body, password: "wrong password" } })).status).toBe(
      401,
    );
    const res = await call("POST", "/auth/reset-identity", { body });
    expect(res.status).toBe(200);
    const session = await json(res);
    expect(session.deviceStatus).toBe("active");
    expect((await aliceRoom.closed).code).toBe(4001);
    await bobInbox.waitFor((f) => f.some((x) => x.type === "identityChanged" && x.data.userId === alice.userId));
    expect((await call("GET", "/users/me", { token: alice.token })).status).toBe(401);
    const me = await json(await call("GET", "/users/me", { token: session.accessToken }));
    expect(me.accountKey).toBe(body.accountKey);
    const view = await json(await call("GET", `/conversations/${id}`, { token: session.accessToken }));
    expect(view).toMatchObject({ rotationNeeded: true, key: null });
  });
});

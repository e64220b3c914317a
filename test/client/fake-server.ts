// An in-process stand-in for a contract v2 server, just enough for the client library's own
// tests: accounts, devices, sessions with single-use refresh tokens, approval, conversations with
// key epochs and the coverage rule, messages with the 409s, socket tickets. It checks device
// signatures like the real server; everything else (wraps, ciphertext) is opaque bytes to it.
// Tests tamper with answers through `tamper` to play a malicious server.
import { DEVICE_SIGNATURE_CONTEXT, type MessageResponse } from "../../client/index.ts";

interface UserRow {
  userId: number;
  username: string;
  password: string;
  accountKey: string;
}
interface DeviceRow {
  deviceId: number;
  userId: number;
  name: string;
  identityKey: string;
  signingKey: string;
  signature: string | null;
  status: "active" | "pending" | "revoked";
  provisioning: string | null;
  createdAt: string;
}
interface WrapRow {
  wrappedKey: string;
  signature: string;
  by: { userId: number; deviceId: number };
  createdAt: string;
}
interface ConversationRow {
  conversationId: number;
  title: string | null;
  participants: { userId: number; joinedAt: string; role: "admin" | "member"; status: "member" | "invited" }[];
  epoch: number;
  rotationNeeded: boolean;
  keys: Map<number, Map<number, WrapRow>>;
  messages: MessageResponse[];
}
interface Caller {
  userId: number;
  deviceId: number;
  sessionId: number;
  pending: boolean;
}

const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const token = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))));
const ts = () => new Date().toISOString();

export class FakeParley {
  now = () => Date.now();
  tokenTtl = 900;
  users = new Map<number, UserRow>();
  devices = new Map<number, DeviceRow>();
  sessions = new Map<
    number,
    { userId: number; deviceId: number; refresh: string; spent: Set<string>; ended: boolean }
  >();
  access = new Map<string, { sessionId: number; exp: number }>();
  conversations = new Map<number, ConversationRow>();
  /** `blocker:blocked` user id pairs. */
  blocks = new Set<string>();
  tickets: string[] = [];
  /** Every request: method, path, parsed body. */
  log: { method: string; path: string; body: any }[] = [];
  /** Rewrites a JSON answer (a malicious server); return undefined to keep it. */
  tamper: ((method: string, path: string, body: any) => any) | undefined;
  /** Runs before a route (e.g. to let another client act first); may answer itself. */
  before: ((method: string, path: string, body: any) => Promise<Response | undefined>) | undefined;
  private seq = 0;
  private id = () => ++this.seq;

  /** Attachments (issue #14): the stored bytes, and every raw body uploaded, byte for byte. */
  blobs = new Map<number, { userId: number; conversationId: number; bytes: Uint8Array }>();
  uploads: { path: string; headers: Record<string, string>; bytes: Uint8Array }[] = [];
  /** Rewrites a blob on its way out (a malicious server or storage). */
  tamperBlob: ((bytes: Uint8Array) => Uint8Array) | undefined;

  fetch = async (url: string, init?: RequestInit): Promise<Response> => {
    const u = new URL(url);
    const method = init?.method ?? "GET";
    if (u.pathname.startsWith("/attachments")) return this.attachments(method, u, init);
    const body = init?.body ? JSON.parse(String(init.body)) : undefined;
    this.log.push({ method, path: u.pathname + u.search, body });
    const early = await this.before?.(method, u.pathname, body);
    if (early) return early;
    const auth = new Headers(init?.headers).get("Authorization");
    const res = await this.route(method, u.pathname, u.searchParams, body, this.caller(auth));
    if (res.status === 204) return new Response(null, { status: 204 });
    let out = res.body;
    if (this.tamper && res.status < 300) out = this.tamper(method, u.pathname, structuredClone(out)) ?? out;
    return new Response(JSON.stringify(out), { status: res.status, headers: { "Content-Type": "application/json" } });
  };

  private async attachments(method: string, u: URL, init?: RequestInit): Promise<Response> {
    const caller = this.caller(new Headers(init?.headers).get("Authorization"));
    const json = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
    if (!caller) return json(401, { error: { code: "unauthorized", message: "unauthorized" } });
    if (method === "POST") {
      const data = new Uint8Array(await new Response(init?.body ?? null).arrayBuffer());
      const headers = Object.fromEntries(new Headers(init?.headers).entries());
      this.uploads.push({ path: u.pathname + u.search, headers, bytes: data });
      this.log.push({ method, path: u.pathname + u.search, body: null });
      if (Number(headers["content-length"]) !== data.byteLength)
        return json(400, { error: { code: "bad_request", message: "length" } });
      const attachmentId = this.id();
      const conversationId = Number(u.searchParams.get("conversationId"));
      this.blobs.set(attachmentId, { userId: caller.userId, conversationId, bytes: data });
      return json(201, { attachmentId, size: data.byteLength });
    }
    this.log.push({ method, path: u.pathname, body: null });
    const blob = this.blobs.get(Number(u.pathname.split("/")[2]));
    if (!blob) return json(403, { error: { code: "forbidden", message: "forbidden" } });
    const out = this.tamperBlob ? this.tamperBlob(blob.bytes.slice()) : blob.bytes;
    return new Response(out.slice(), {
      status: 200,
      headers: { "Content-Type": "application/octet-stream", "Content-Length": String(out.byteLength) },
    });
  }

  private caller(auth: string | null): Caller | undefined {
    const a = auth ? this.access.get(auth.replace(/^Bearer /, "")) : undefined;
    if (!a || a.exp <= this.now()) return undefined;
    const s = this.sessions.get(a.sessionId);
    if (!s || s.ended) return undefined;
    const device = this.devices.get(s.deviceId)!;
    return { userId: s.userId, deviceId: s.deviceId, sessionId: a.sessionId, pending: device.status === "pending" };
  }

  private issue(sessionId: number) {
    const s = this.sessions.get(sessionId)!;
    const accessToken = token();
    this.access.set(accessToken, { sessionId, exp: this.now() + this.tokenTtl * 1000 });
    s.refresh = token();
    const device = this.devices.get(s.deviceId)!;
    return {
      accessToken,
      tokenType: "Bearer",
      expiresIn: this.tokenTtl,
      refreshToken: s.refresh,
      refreshExpiresIn: 2_592_000,
      sessionId,
      deviceId: s.deviceId,
      deviceStatus: device.status,
    };
  }

  private newSession(userId: number, deviceId: number) {
    const sessionId = this.id();
    this.sessions.set(sessionId, { userId, deviceId, refresh: "", spent: new Set(), ended: false });
    return this.issue(sessionId);
  }

  async deviceSignatureOk(accountKey: string, d: { identityKey: string; signingKey: string; signature: string }) {
    const key = await crypto.subtle.importKey("raw", b64(accountKey), { name: "Ed25519" }, false, ["verify"]);
    const data = new Uint8Array([
      ...new TextEncoder().encode(DEVICE_SIGNATURE_CONTEXT),
      ...b64(d.identityKey),
      ...b64(d.signingKey),
    ]);
    return crypto.subtle.verify({ name: "Ed25519" }, key, b64(d.signature), data);
  }

  userByName(name: string) {
    return [...this.users.values()].find((u) => u.username.toLowerCase() === name.toLowerCase());
  }
  activeDevices(userId: number) {
    return [...this.devices.values()].filter((d) => d.userId === userId && d.status === "active");
  }
  publicDevice(d: DeviceRow) {
    const { name: _n, status: _s, provisioning: _p, ...rest } = d;
    return rest;
  }
  /** Ends every session of a device and marks its conversations for rotation. */
  revokeDevice(deviceId: number) {
    const d = this.devices.get(deviceId)!;
    d.status = "revoked";
    for (const s of this.sessions.values()) if (s.deviceId === deviceId) s.ended = true;
    for (const c of this.conversations.values())
      if (c.participants.some((p) => p.userId === d.userId)) c.rotationNeeded = true;
  }

  private view(c: ConversationRow, caller: Caller) {
    const wrap = c.keys.get(c.epoch)?.get(caller.deviceId);
    return {
      conversationId: c.conversationId,
      title: c.title,
      createdAt: ts(),
      lastMessageId: c.messages.at(-1)?.messageId ?? null,
      lastSeq: c.messages.length,
      status: c.participants.find((p) => p.userId === caller.userId)?.status ?? "member",
      epoch: c.epoch,
      rotationNeeded: c.rotationNeeded,
      participants: c.participants.map((p) => ({ ...p, username: this.users.get(p.userId)!.username })),
      key: wrap ? this.keyView(wrap, c.epoch) : null,
    };
  }
  private keyView(w: WrapRow, epoch: number) {
    return { epoch, wrappedKey: w.wrappedKey, wrappedBy: w.by, signature: w.signature, createdAt: w.createdAt };
  }

  /** Stores an epoch's keys if they cover exactly the participants' active devices. */
  private commit(c: ConversationRow, epoch: number, keys: any[], caller: Caller, extraUser?: number) {
    if (epoch !== c.epoch + 1) return err(409, "conflict", [{ path: "epoch", message: `current is ${c.epoch}` }]);
    const users = [...c.participants.map((p) => p.userId), ...(extraUser ? [extraUser] : [])];
    const want = users.flatMap((u) => this.activeDevices(u).map((d) => d.deviceId)).sort();
    const got = keys.map((k) => k.deviceId).sort();
    if (JSON.stringify(want) !== JSON.stringify(got))
      return err(422, "validation_failed", [{ path: "keys", message: `want ${want}` }]);
    const by = { userId: caller.userId, deviceId: caller.deviceId };
    const createdAt = new Date(this.now()).toISOString();
    c.keys.set(
      epoch,
      new Map(keys.map((k) => [k.deviceId, { wrappedKey: k.wrappedKey, signature: k.signature, by, createdAt }])),
    );
    c.epoch = epoch;
    c.rotationNeeded = false;
    return undefined;
  }

  private async route(method: string, path: string, q: URLSearchParams, body: any, caller: Caller | undefined) {
    const m = (re: RegExp) => re.exec(`${method} ${path}`);
    const seg = path.split("/").map(decodeURIComponent);
    // Issue #13: just enough to see what the library sends (checked by the Workers tests for real).
    if (m(/^POST \/conversations\/\d+\/read$/)) return { status: 204, body: null };
    if (m(/^PUT \/conversations\/\d+\/settings$/)) {
      return ok(200, { conversationId: Number(seg[2]), messageTtlSeconds: body.messageTtlSeconds });
    }
    if (m(/^DELETE \/messages\/\d+$/)) {
      for (const c of this.conversations.values()) {
        const msg = c.messages.find((x) => x.messageId === Number(seg[2]));
        if (msg && msg.senderId !== caller?.userId) return err(403, "forbidden");
        if (msg) Object.assign(msg, { nonce: null, ciphertext: null, authTag: null, signature: null, deleted: true });
      }
      return { status: 204, body: null };
    }
    if (m(/^POST \/auth\/register$/)) {
      if (this.userByName(body.username)) return err(409, "conflict");
      if (!(await this.deviceSignatureOk(body.accountKey, body.device))) return err(422, "validation_failed");
      const userId = this.id();
      this.users.set(userId, { userId, username: body.username, password: body.password, accountKey: body.accountKey });
      const deviceId = this.id();
      this.devices.set(deviceId, {
        deviceId,
        userId,
        ...body.device,
        status: "active",
        provisioning: null,
        createdAt: ts(),
      });
      return ok(201, { userId, username: body.username, deviceId });
    }
    if (m(/^POST \/auth\/login$/)) {
      const user = this.userByName(body.username);
      if (!user || user.password !== body.password) return err(401, "unauthorized");
      if (body.deviceId !== undefined) {
        const d = this.devices.get(body.deviceId);
        if (!d || d.userId !== user.userId || d.status === "revoked") return err(401, "unauthorized");
        return ok(200, this.newSession(user.userId, d.deviceId));
      }
      const deviceId = this.id();
      this.devices.set(deviceId, {
        deviceId,
        userId: user.userId,
        ...body.device,
        signature: null,
        status: "pending",
        provisioning: null,
        createdAt: ts(),
      });
      return ok(200, this.newSession(user.userId, deviceId));
    }
    if (m(/^POST \/auth\/refresh$/)) {
      for (const [sessionId, s] of this.sessions) {
        if (s.spent.has(body.refreshToken)) {
          s.ended = true; // reuse of a spent refresh token ends the session
          return err(401, "unauthorized");
        }
        if (s.refresh === body.refreshToken && !s.ended) {
          s.spent.add(s.refresh);
          return ok(200, this.issue(sessionId));
        }
      }
      return err(401, "unauthorized");
    }
    if (m(/^POST \/auth\/reset-identity$/)) {
      const user = this.userByName(body.username);
      if (!user || user.password !== body.password) return err(401, "unauthorized");
      for (const d of this.activeDevices(user.userId)) this.revokeDevice(d.deviceId);
      user.accountKey = body.accountKey;
      const deviceId = this.id();
      this.devices.set(deviceId, {
        deviceId,
        userId: user.userId,
        ...body.device,
        status: "active",
        provisioning: null,
        createdAt: ts(),
      });
      return ok(200, this.newSession(user.userId, deviceId));
    }
    if (!caller) return err(401, "unauthorized");
    if (m(/^POST \/auth\/logout$/)) {
      this.sessions.get(caller.sessionId)!.ended = true;
      return ok(204, null);
    }
    if (m(/^GET \/users\/me$/)) {
      const u = this.users.get(caller.userId)!;
      return ok(200, {
        userId: u.userId,
        username: u.username,
        accountKey: u.accountKey,
        createdAt: ts(),
        settings: { readReceipts: true },
      });
    }
    if (m(/^GET \/devices$/)) {
      const own = [...this.devices.values()].filter((d) => d.userId === caller.userId && d.status !== "revoked");
      return ok(
        200,
        own.map((d) => ({
          ...this.publicDevice(d),
          name: d.name,
          status: d.status,
          lastSeenAt: null,
          current: d.deviceId === caller.deviceId,
        })),
      );
    }
    if (m(/^POST \/ws\/tickets$/)) {
      const ticket = token();
      this.tickets.push(ticket);
      return ok(201, { ticket, expiresIn: 30 });
    }
    if (m(/^GET \/devices\/(\d+)\/provisioning$/)) {
      const d = this.devices.get(Number(seg[2]));
      if (!d || d.deviceId !== caller.deviceId || !d.provisioning) return err(404, "not_found");
      return ok(200, { provisioning: d.provisioning });
    }
    if (caller.pending) return err(403, "forbidden");
    if (m(/^GET \/users\/([^/]+)$/)) {
      const u = this.userByName(seg[2]!);
      if (!u) return err(404, "not_found");
      return ok(200, {
        userId: u.userId,
        username: u.username,
        accountKey: u.accountKey,
        devices: this.activeDevices(u.userId).map((d) => this.publicDevice(d)),
      });
    }
    if (m(/^POST \/devices\/(\d+)\/approve$/)) {
      const d = this.devices.get(Number(seg[2]));
      if (!d || d.userId !== caller.userId) return err(404, "not_found");
      if (d.status !== "pending") return err(409, "conflict");
      const user = this.users.get(caller.userId)!;
      if (!(await this.deviceSignatureOk(user.accountKey, { ...d, signature: body.signature })))
        return err(422, "validation_failed");
      const mine = [...this.conversations.values()].filter((c) =>
        c.participants.some((p) => p.userId === caller.userId),
      );
      if (body.keys.length !== mine.length) return err(422, "validation_failed");
      for (const k of body.keys) {
        const c = this.conversations.get(k.conversationId)!;
        if (k.epoch !== c.epoch) return err(409, "conflict");
        c.keys.get(c.epoch)!.set(d.deviceId, {
          wrappedKey: k.wrappedKey,
          signature: k.signature,
          by: { userId: caller.userId, deviceId: caller.deviceId },
          createdAt: c.keys.get(c.epoch)!.values().next().value!.createdAt,
        });
      }
      Object.assign(d, { status: "active", signature: body.signature, provisioning: body.provisioning });
      return ok(200, this.publicDevice(d));
    }
    if (m(/^(PUT|DELETE) \/users\/me\/blocked\/[^/]+$/)) {
      const u = this.userByName(seg[4]!);
      if (!u) return err(404, "not_found");
      if (method === "PUT") this.blocks.add(`${caller.userId}:${u.userId}`);
      else this.blocks.delete(`${caller.userId}:${u.userId}`);
      return ok(204, null);
    }
    if (m(/^GET \/users\/me\/blocked$/)) {
      const out = [...this.blocks]
        .map((pair) => pair.split(":").map(Number))
        .filter(([by]) => by === caller.userId)
        .map(([, id]) => ({ userId: id, username: this.users.get(id!)!.username, blockedAt: ts() }));
      return ok(200, out);
    }
    if (m(/^POST \/conversations$/)) {
      const users: UserRow[] = body.participants.map((n: string) => this.userByName(n)!);
      if (users.some((u) => this.blocks.has(`${u.userId}:${caller.userId}`)))
        return err(403, "forbidden", [], "this user cannot be added");
      const c: ConversationRow = {
        conversationId: this.id(),
        title: body.title ?? null,
        participants: users.map((u) => ({
          userId: u.userId,
          joinedAt: ts(),
          role: u.userId === caller.userId ? "admin" : "member",
          status: u.userId === caller.userId ? "member" : "invited",
        })),
        epoch: 0,
        rotationNeeded: false,
        keys: new Map(),
        messages: [],
      };
      const failed = this.commit(c, 1, body.keys, caller);
      if (failed) return failed;
      this.conversations.set(c.conversationId, c);
      return ok(201, this.view(c, caller));
    }
    if (m(/^GET \/conversations$/)) {
      const mine = [...this.conversations.values()].filter((c) =>
        c.participants.some((p) => p.userId === caller.userId),
      );
      return ok(200, { conversations: mine.map((c) => this.view(c, caller)), nextCursor: null });
    }
    const conv = /^\/conversations\/(\d+)/.exec(path);
    const c = conv ? this.conversations.get(Number(conv[1])) : undefined;
    if (conv && !c?.participants.some((p) => p.userId === caller.userId)) return err(403, "forbidden");
    if (c && m(/^GET \/conversations\/\d+$/)) return ok(200, this.view(c, caller));
    if (c && m(/^GET \/conversations\/\d+\/devices$/)) {
      return ok(
        200,
        c.participants.flatMap((p) =>
          this.activeDevices(p.userId).map((d) => ({
            ...this.publicDevice(d),
            username: this.users.get(p.userId)!.username,
          })),
        ),
      );
    }
    if (c && m(/^GET \/conversations\/\d+\/keys$/)) {
      const out = [...c.keys.entries()]
        .filter(([, w]) => w.has(caller.deviceId))
        .map(([epoch, w]) => this.keyView(w.get(caller.deviceId)!, epoch));
      return ok(200, out.reverse());
    }
    if (c && m(/^POST \/conversations\/\d+\/epochs$/)) {
      const failed = this.commit(c, body.epoch, body.keys, caller);
      return failed ?? ok(201, { epoch: c.epoch });
    }
    if (c && m(/^POST \/conversations\/\d+\/participants$/)) {
      const u = this.userByName(body.username);
      if (!u) return err(422, "validation_failed");
      if (this.blocks.has(`${u.userId}:${caller.userId}`))
        return err(403, "forbidden", [], "this user cannot be added");
      const failed = this.commit(c, body.epoch, body.keys, caller, u.userId);
      if (failed) return failed;
      c.participants.push({ userId: u.userId, joinedAt: ts(), role: "member", status: "invited" });
      return ok(201, this.view(c, caller));
    }
    if (c && m(/^DELETE \/conversations\/\d+\/participants\/([^/]+)$/)) {
      const u = this.userByName(seg[4]!)!;
      c.participants = c.participants.filter((p) => p.userId !== u.userId);
      c.rotationNeeded = true;
      return ok(204, null);
    }
    if (c && m(/^POST \/conversations\/\d+\/accept$/)) {
      c.participants.find((p) => p.userId === caller.userId)!.status = "member";
      return ok(200, this.view(c, caller));
    }
    if (c && m(/^POST \/conversations\/\d+\/decline$/)) {
      const me = c.participants.find((p) => p.userId === caller.userId)!;
      if (me.status !== "invited") return err(409, "conflict");
      c.participants = c.participants.filter((p) => p !== me);
      c.rotationNeeded = true;
      const admin = c.participants.find((p) => p.role === "admin");
      if (body?.block && admin) this.blocks.add(`${caller.userId}:${admin.userId}`);
      return ok(204, null);
    }
    if (c && m(/^GET \/conversations\/\d+\/messages$/)) {
      const after = q.get("after");
      const list = after ? c.messages.filter((x) => x.messageId > Number(after)) : [...c.messages].reverse();
      return ok(200, list.slice(0, Number(q.get("limit") ?? 50)));
    }
    if (m(/^POST \/messages$/)) {
      const target = this.conversations.get(body.conversationId);
      const me = target?.participants.find((p) => p.userId === caller.userId);
      if (!target || !me) return err(403, "forbidden");
      if (me.status === "invited") return err(403, "forbidden", [], "accept the conversation first");
      const dup = target.messages.find(
        (x) => x.senderId === caller.userId && x.clientMessageId === body.clientMessageId,
      );
      if (dup) return ok(200, { messageId: dup.messageId, seq: dup.seq, timestamp: dup.timestamp });
      if (body.keyEpoch !== target.epoch)
        return err(409, "conflict", [{ path: "keyEpoch", message: `current is ${target.epoch}` }]);
      if (target.rotationNeeded) return err(409, "conflict", [{ path: "epoch", message: "rotation required" }]);
      const u = this.users.get(caller.userId)!;
      const msg: MessageResponse = {
        messageId: this.id(),
        seq: target.messages.length + 1,
        conversationId: target.conversationId,
        senderId: u.userId,
        senderUsername: u.username,
        senderDeviceId: caller.deviceId,
        keyEpoch: body.keyEpoch,
        timestamp: ts(),
        nonce: body.nonce,
        ciphertext: body.ciphertext,
        authTag: body.authTag,
        associatedData: body.associatedData ?? null,
        signature: body.signature,
        clientMessageId: body.clientMessageId ?? null,
        attachments: body.attachments ?? [],
        relatesTo: body.relatesTo ?? null,
        expiresAt: null,
        deleted: false,
      };
      target.messages.push(msg);
      return ok(201, { messageId: msg.messageId, seq: msg.seq, timestamp: msg.timestamp });
    }
    return err(404, "not_found");
  }
}

function ok(status: number, body: unknown) {
  return { status, body };
}
function err(status: number, code: string, details?: { path: string; message: string }[], message = code) {
  return { status, body: { error: { code, message, ...(details?.length ? { details } : {}) } } };
}

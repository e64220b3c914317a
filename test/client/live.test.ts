// The client library's transport logic against scripted fakes: retries that reuse the
// clientMessageId, Retry-After, token refresh, and the live subscription's catch-up, dedupe, gap
// filling, reconnects and stops. No server involved (the e2e suite runs it against wrangler dev).
import { describe, expect, it } from "vitest";
import {
  backoffDelay,
  type CloseInfo,
  HttpTransport,
  type MessageResponse,
  ParleyClient,
  ParleyError,
  parseRetryAfter,
  subscribeConversationFeed,
  type WebSocketLike,
} from "../../client/index.ts";
import { FakeParley } from "./fake-server.ts";

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });

const apiError = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message: code } }, headers);

const waitUntil = async (predicate: () => boolean, timeoutMs = 3_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe("HTTP retries", () => {
  it("retries a message send after a network error, a 503 and a 429 with the same clientMessageId", async () => {
    const server = new FakeParley();
    const bodies: { clientMessageId: string; associatedData: string }[] = [];
    const failures: (() => Response)[] = [
      () => {
        throw new TypeError("fetch failed");
      },
      () => apiError(503, "internal"),
      () => apiError(429, "rate_limited", { "Retry-After": "1" }),
    ];
    const times: number[] = [];
    const fetch = async (url: string, init?: RequestInit) => {
      if (new URL(url).pathname === "/messages") {
        bodies.push(JSON.parse(String(init?.body)));
        times.push(Date.now());
        const fail = failures.shift();
        if (fail) return fail();
      }
      return server.fetch(url, init);
    };
    const options = { baseUrl: "http://parley.test/", fetch, retry: { baseDelayMs: 1, maxDelayMs: 5 } };
    const bob = new ParleyClient(options);
    await bob.register("bob", "battery staple");
    const alice = new ParleyClient(options);
    await alice.register("alice", "correct horse");
    const conversation = await alice.createConversation(["bob"]);
    const sent = await alice.sendMessage(conversation.conversationId, "hello");
    expect(sent).toMatchObject({ seq: 1, keyEpoch: 2 }); // epoch 2 was committed at creation
    expect(bodies).toHaveLength(4);
    expect(new Set(bodies.map((b) => b.clientMessageId))).toEqual(new Set([sent.clientMessageId]));
    expect(sent.clientMessageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(times[3]! - times[2]!).toBeGreaterThanOrEqual(950); // Retry-After: 1 was honoured
    expect(server.conversations.get(conversation.conversationId)!.messages).toHaveLength(1);
  });

  it("does not retry a non-idempotent request after a 500, but does after a 429", async () => {
    let calls = 0;
    const http = new HttpTransport({
      baseUrl: "http://parley.test",
      getToken: async () => "t",
      retry: { baseDelayMs: 1 },
      fetch: async () => {
        calls++;
        return calls === 1 ? apiError(429, "rate_limited", { "Retry-After": "0" }) : apiError(500, "internal");
      },
    });
    const err = await http.request("POST", "/conversations", { body: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParleyError);
    expect(err).toMatchObject({ status: 500, code: "internal" });
    expect(calls).toBe(2);
  });

  it("gives up after maxAttempts and reports the last error with its code and details", async () => {
    let calls = 0;
    const http = new HttpTransport({
      baseUrl: "http://parley.test",
      getToken: async () => "t",
      retry: { baseDelayMs: 1, maxAttempts: 3 },
      fetch: async () => {
        calls++;
        return json(503, { error: { code: "internal", message: "down", details: [{ path: "x", message: "y" }] } });
      },
    });
    await expect(http.request("GET", "/conversations")).rejects.toMatchObject({
      status: 503,
      code: "internal",
      message: "down",
    });
    expect(calls).toBe(3);
  });

  it("does not wait for a Retry-After longer than allowed", async () => {
    const http = new HttpTransport({
      baseUrl: "http://parley.test",
      getToken: async () => "t",
      retry: { maxRetryAfterMs: 1_000 },
      fetch: async () => apiError(429, "rate_limited", { "Retry-After": "120" }),
    });
    await expect(http.request("GET", "/users/me")).rejects.toMatchObject({ status: 429, retryAfter: 120 });
  });

  it("retries a 401 once with a token obtained afresh", async () => {
    const asked: boolean[] = [];
    const seen: (string | null)[] = [];
    const http = new HttpTransport({
      baseUrl: "http://parley.test",
      getToken: async ({ forceRefresh }) => {
        asked.push(forceRefresh);
        return forceRefresh ? "fresh" : "stale";
      },
      fetch: async (_url, init) => {
        const auth = new Headers(init?.headers).get("Authorization");
        seen.push(auth);
        return auth === "Bearer fresh" ? json(200, { ok: true }) : apiError(401, "unauthorized");
      },
    });
    expect(await http.request("POST", "/conversations", { body: {} })).toEqual({ ok: true });
    expect(asked).toEqual([false, true]);
    expect(seen).toEqual(["Bearer stale", "Bearer fresh"]);
  });

  it("parses Retry-After and draws jittered backoff within bounds", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter(new Date(Date.now() + 5_000).toUTCString())).toBeGreaterThan(3_000);
    expect(backoffDelay(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 30_000, () => 1)).toBe(4_000);
    expect(backoffDelay(20, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(5, 500, 30_000, () => 0)).toBe(0);
  });
});

/** A scripted server side for one socket. */
class FakeSocket implements WebSocketLike {
  readyState = 0;
  readonly sent: string[] = [];
  private readonly listeners = new Map<string, ((event: never) => void)[]>();
  constructor(
    readonly url: string,
    private readonly server: FakeServer,
  ) {}
  addEventListener(type: string, listener: (event: never) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  emit(type: string, event: unknown): void {
    for (const l of this.listeners.get(type) ?? []) (l as (e: unknown) => void)(event);
  }
  send(data: string): void {
    this.sent.push(data);
    if (data === "ping" && this.server.admit) queueMicrotask(() => this.receive("pong"));
  }
  close(code = 1000, reason = ""): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.emit("close", { code, reason }));
  }
  open(): void {
    this.readyState = 1;
    this.emit("open", {});
  }
  receive(text: string): void {
    this.emit("message", { data: text });
  }
  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.emit("close", { code, reason });
  }
}

class FakeServer {
  admit = true;
  readonly sockets: FakeSocket[] = [];
  readonly fetches: number[] = [];
  readonly tokens: { forceRefresh: boolean }[] = [];
  messages: MessageResponse[] = [];
  create = (url: string): WebSocketLike => {
    const socket = new FakeSocket(url, this);
    this.sockets.push(socket);
    return socket;
  };
  get last(): FakeSocket {
    return this.sockets.at(-1)!;
  }
  /** `after` as the API pages it (oldest first); `before`/neither newest first, recorded as -before (or -Infinity). */
  failWith: Error | undefined;
  fetchMessages = async (q: { after?: number; before?: number; limit: number }): Promise<MessageResponse[]> => {
    if (this.failWith) throw this.failWith;
    if (q.after !== undefined) {
      this.fetches.push(q.after);
      return this.messages.filter((m) => m.messageId > q.after!).slice(0, q.limit);
    }
    this.fetches.push(-(q.before ?? Number.POSITIVE_INFINITY));
    return this.messages
      .filter((m) => m.messageId < (q.before ?? Number.POSITIVE_INFINITY))
      .reverse()
      .slice(0, q.limit);
  };
  getToken = async (o: { forceRefresh: boolean }): Promise<string> => {
    this.tokens.push(o);
    return `tok${this.tokens.length}`;
  };
}

function message(seq: number): MessageResponse {
  return {
    messageId: 100 + seq,
    seq,
    conversationId: 3,
    senderId: 1,
    senderUsername: "alice",
    timestamp: "2026-11-24T00:00:00.000Z",
    senderDeviceId: 1,
    keyEpoch: 1,
    nonce: "",
    ciphertext: "",
    authTag: "",
    associatedData: null,
    signature: "",
    clientMessageId: null,
    attachments: [],
    relatesTo: null,
    expiresAt: null,
    deleted: false,
  };
}
const frame = (m: MessageResponse) => JSON.stringify({ type: "newMessage", data: m });

function feed(server: FakeServer, after = 0) {
  const delivered: number[] = [];
  const closes: CloseInfo[] = [];
  const errors: unknown[] = [];
  const sub = subscribeConversationFeed({
    conversationId: 3,
    url: (token) => `ws://parley.test/ws?conversationId=3&token=${token}`,
    getToken: server.getToken,
    createSocket: server.create,
    fetchMessages: server.fetchMessages,
    onMessage: (m) => void delivered.push(m.seq),
    options: {
      after,
      pageSize: 2,
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
      onClose: (info) => closes.push(info),
      onError: (err) => errors.push(err),
    },
  });
  return { sub, delivered, closes, errors };
}

describe("live subscription", () => {
  it("opens the socket before catching up, then delivers history and live messages once, in order", async () => {
    const server = new FakeServer();
    server.messages = [1, 2, 3].map(message);
    const { sub, delivered } = feed(server);
    await waitUntil(() => server.sockets.length === 1);
    expect(server.fetches).toEqual([]); // nothing fetched before the socket is admitted
    expect(server.last.url).toBe("ws://parley.test/ws?conversationId=3&token=tok1");
    // A message that lands between the socket opening and the catch-up arrives both ways.
    server.messages.push(message(4));
    server.last.open();
    server.last.receive(frame(message(4)));
    await waitUntil(() => delivered.length === 4);
    // From the start: the history walked backwards with `before` (pages of 2), then `after` the newest.
    expect(server.fetches).toEqual([Number.NEGATIVE_INFINITY, -103, -101, 104]);
    server.last.receive(frame(message(5)));
    server.last.receive(frame(message(5))); // a duplicate
    server.last.receive(frame(message(3))); // an old one
    await waitUntil(() => delivered.length >= 5);
    await new Promise((r) => setTimeout(r, 20));
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(sub.lastMessageId).toBe(105);
    expect(sub.state).toBe("open");
    sub.close();
    expect((await sub.closed).cause).toBe("client");
  });

  it("fills a seq gap with `after` before delivering the frame that revealed it", async () => {
    const server = new FakeServer();
    server.messages = [message(1)];
    const { sub, delivered } = feed(server);
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    await waitUntil(() => delivered.length === 1);
    server.messages.push(message(2), message(3), message(4));
    server.last.receive(frame(message(4))); // 2 and 3 were missed
    await waitUntil(() => delivered.length === 4);
    expect(delivered).toEqual([1, 2, 3, 4]);
    expect(server.fetches.at(-1)).toBe(103);
    sub.close();
  });

  it("starts after a given messageId, and learns the seq from the first message", async () => {
    const server = new FakeServer();
    server.messages = [1, 2, 3].map(message);
    const { sub, delivered } = feed(server, 102);
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    await waitUntil(() => delivered.length === 1);
    expect(delivered).toEqual([3]);
    sub.close();
  });

  it("reconnects after a drop with a fresh token and catches up from the last message held", async () => {
    const server = new FakeServer();
    server.messages = [message(1)];
    const states: string[] = [];
    const delivered: number[] = [];
    const sub = subscribeConversationFeed({
      conversationId: 3,
      url: (token) => `ws://x/ws?token=${token}`,
      getToken: server.getToken,
      createSocket: server.create,
      fetchMessages: server.fetchMessages,
      onMessage: (m) => void delivered.push(m.seq),
      options: { reconnect: { initialDelayMs: 5, maxDelayMs: 10 }, onStateChange: (s) => states.push(s) },
    });
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    await waitUntil(() => delivered.length === 1);
    server.last.serverClose(1006);
    server.messages.push(message(2)); // sent while disconnected
    await waitUntil(() => server.sockets.length === 2);
    expect(server.last.url).toBe("ws://x/ws?token=tok2");
    server.last.open();
    await waitUntil(() => delivered.length === 2);
    expect(server.fetches.at(-1)).toBe(101);
    expect(states).toEqual(["open", "reconnecting", "open"]);
    sub.close();
  });

  it("stops with `removed` on 4003 and does not reconnect", async () => {
    const server = new FakeServer();
    const { closes } = feed(server);
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    server.last.serverClose(4003, "removed from the conversation");
    await waitUntil(() => closes.length === 1);
    expect(closes[0]).toMatchObject({ cause: "removed", code: 4003, reason: "removed from the conversation" });
    expect(closes[0]!.message).toMatch(/removed from this conversation/);
    await new Promise((r) => setTimeout(r, 40));
    expect(server.sockets).toHaveLength(1);
  });

  it("stops with `policy` on a 1008 refusal (not a participant), without catching up", async () => {
    const server = new FakeServer();
    server.admit = false;
    const { closes } = feed(server);
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    server.last.serverClose(1008, "not a participant of this conversation");
    await waitUntil(() => closes.length === 1);
    expect(closes[0]).toMatchObject({ cause: "policy", code: 1008 });
    expect(server.fetches).toEqual([]);
    await new Promise((r) => setTimeout(r, 40));
    expect(server.sockets).toHaveLength(1);
  });

  it("retries an expired token once with a forced refresh, then stops with `unauthorized`", async () => {
    const server = new FakeServer();
    const { closes } = feed(server);
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    await waitUntil(() => server.fetches.length === 1);
    server.last.serverClose(1008, "token expired");
    await waitUntil(() => server.sockets.length === 2);
    expect(server.tokens.map((t) => t.forceRefresh)).toEqual([false, true]);
    server.admit = false;
    server.last.open();
    server.last.serverClose(1008, "invalid or expired token");
    await waitUntil(() => closes.length === 1);
    expect(closes[0]).toMatchObject({ cause: "unauthorized", code: 1008 });
  });

  it("stops when the catch-up itself is refused with 403, and retries other failures", async () => {
    const server = new FakeServer();
    server.failWith = new Error("network down");
    const { closes, errors } = feed(server);
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    await waitUntil(() => server.sockets.length === 2); // a failed catch-up starts over
    expect(errors[0]).toMatchObject({ message: "network down" });
    server.failWith = new ParleyError(403, "forbidden", "not a participant of this conversation");
    server.last.open();
    await waitUntil(() => closes.length === 1);
    expect(closes[0]).toMatchObject({ cause: "policy", reason: "not a participant of this conversation" });
    expect(server.sockets).toHaveLength(2);
  });

  it("gives up after maxAttempts consecutive failures when asked to", async () => {
    const server = new FakeServer();
    const closes: CloseInfo[] = [];
    subscribeConversationFeed({
      conversationId: 3,
      url: () => "ws://x/ws",
      getToken: server.getToken,
      createSocket: server.create,
      fetchMessages: server.fetchMessages,
      onMessage: () => {},
      options: { reconnect: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 2 }, onClose: (i) => closes.push(i) },
    });
    for (let n = 1; n <= 3; n++) {
      await waitUntil(() => server.sockets.length === n);
      server.last.serverClose(1006);
    }
    await waitUntil(() => closes.length === 1);
    expect(closes[0]!.cause).toBe("gave-up");
    expect(server.sockets).toHaveLength(3);
  });

  it("reconnects when the server stops answering pings", async () => {
    const server = new FakeServer();
    const delivered: number[] = [];
    const sub = subscribeConversationFeed({
      conversationId: 3,
      url: () => "ws://x/ws",
      getToken: server.getToken,
      createSocket: server.create,
      fetchMessages: server.fetchMessages,
      onMessage: (m) => void delivered.push(m.seq),
      options: { reconnect: { initialDelayMs: 1, maxDelayMs: 2, pingIntervalMs: 20 } },
    });
    await waitUntil(() => server.sockets.length === 1);
    server.last.open();
    await waitUntil(() => server.fetches.length === 1);
    server.admit = false; // silence: pings go unanswered
    await waitUntil(() => server.sockets.length === 2);
    server.admit = true;
    server.last.open();
    await waitUntil(() => server.fetches.length === 2);
    sub.close();
  });
});

import { exports } from "cloudflare:workers";

export interface TestSocket {
  ws: WebSocket;
  /** Every text frame received, parsed where it is JSON. */
  frames: any[];
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves once `predicate(frames)` holds; rejects after `timeoutMs`. */
  waitFor(predicate: (frames: any[]) => boolean, timeoutMs?: number): Promise<any[]>;
  newMessages(): any[];
}

/** Opens a WebSocket through the Worker, as a client would (`/ws?...`). */
export async function openSocket(query: string, headers: Record<string, string> = {}): Promise<TestSocket> {
  const res = await exports.default.fetch(
    new Request(`http://parley.test/ws?${query}`, { headers: { Upgrade: "websocket", ...headers } }),
  );
  const ws = res.webSocket;
  if (!ws) throw new Error(`no WebSocket in the answer (status ${res.status})`);
  const frames: any[] = [];
  const waiters = new Set<() => void>();
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.addEventListener("close", (event) => {
      resolve({ code: event.code, reason: event.reason });
      for (const wake of waiters) wake();
    });
  });
  ws.addEventListener("message", (event) => {
    const text = typeof event.data === "string" ? event.data : "";
    try {
      frames.push(JSON.parse(text));
    } catch {
      frames.push(text);
    }
    for (const wake of waiters) wake();
  });
  ws.accept();
  return {
    ws,
    frames,
    closed,
    newMessages: () => frames.filter((f) => f?.type === "newMessage").map((f) => f.data),
    waitFor(predicate, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (predicate(frames)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(frames);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out; frames so far: ${JSON.stringify(frames).slice(0, 500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

export const conversationSocket = (conversationId: number, token: string) =>
  openSocket(`conversationId=${conversationId}&token=${encodeURIComponent(token)}`);

export const inboxSocket = (token: string) => openSocket(`token=${encodeURIComponent(token)}`);

/** Counts `newMessage` frames for a conversation (or all). */
export const messagesOf = (frames: any[], conversationId?: number) =>
  frames
    .filter(
      (f) => f?.type === "newMessage" && (conversationId === undefined || f.data.conversationId === conversationId),
    )
    .map((f) => f.data);

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
